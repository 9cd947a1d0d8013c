/*
 * Prints every ConfigOption of the named Flink option classes as one JSON line each: the class and
 * field, the key, the default value (String.valueOf), the value class and the fallback keys with
 * their deprecation flag. Used by tests/differential/options.py to tabulate option keys and defaults per
 * Flink line. Only reflection and Flink's ConfigOption API, so the one source runs on 1.12 to 2.x.
 *
 * Usage: java -cp <dir>:flink-dist-<v>.jar OptionDump <class name>...
 */

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;

public final class OptionDump {

    public static void main(String[] args) throws Exception {
        StringBuilder out = new StringBuilder();
        for (String name : args) {
            Class<?> owner;
            try {
                owner = Class.forName(name);
            } catch (ClassNotFoundException absent) {
                out.append("{\"class\":").append(quote(name)).append(",\"missing\":true}\n");
                continue;
            }
            for (Field field : owner.getDeclaredFields()) {
                if (!Modifier.isStatic(field.getModifiers())
                        || !field.getType().getName().equals("org.apache.flink.configuration.ConfigOption")) {
                    continue;
                }
                field.setAccessible(true);
                Object option = field.get(null);
                out.append("{\"class\":").append(quote(owner.getSimpleName()));
                out.append(",\"field\":").append(quote(field.getName()));
                out.append(",\"key\":").append(quote((String) call(option, "key")));
                Object value = call(option, "defaultValue");
                out.append(",\"default\":").append(value == null ? "null" : quote(String.valueOf(value)));
                Object type = call(option, "getClazz");
                out.append(",\"type\":").append(type == null ? "null" : quote(((Class<?>) type).getSimpleName()));
                out.append(",\"deprecatedField\":").append(field.isAnnotationPresent(Deprecated.class));
                out.append(",\"fallbackKeys\":[");
                boolean first = true;
                for (Object fallback : (Iterable<?>) call(option, "fallbackKeys")) {
                    out.append(first ? "" : ",");
                    first = false;
                    out.append("{\"key\":").append(quote((String) call(fallback, "getKey")));
                    out.append(",\"deprecated\":").append(call(fallback, "isDeprecated")).append("}");
                }
                out.append("]}\n");
            }
        }
        System.out.print(out);
    }

    private static Object call(Object target, String name) throws Exception {
        for (Class<?> type = target.getClass(); type != null; type = type.getSuperclass()) {
            for (Method method : type.getDeclaredMethods()) {
                if (method.getName().equals(name) && method.getParameterCount() == 0) {
                    method.setAccessible(true);
                    return method.invoke(target);
                }
            }
        }
        return null;
    }

    private static String quote(String text) {
        StringBuilder quoted = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') {
                quoted.append('\\').append(c);
            } else if (c < 0x20) {
                quoted.append(String.format("\\u%04x", (int) c));
            } else {
                quoted.append(c);
            }
        }
        return quoted.append('"').toString();
    }
}
