/*
 * The Apache Flink Kubernetes Operator's reading of `spec.<role>.resources`, on the real classes it reads
 * them with: Flink's MemorySize and fabric8's Quantity (the one Flink's flink-dist shades; Flink 2.3 shades
 * kubernetes-model-core 7.3.1, the version of operator 1.15.0, whose Quantity reads these texts as 7.8.0 of
 * the operator's main branch does).
 *
 * Usage: java -cp <harness classes>:flink-dist-<version>.jar OperatorResourcesHarness
 *
 * Reads JSON Lines {"id", "role": "jobmanager"|"taskmanager", "resources": {"requests": {..}, "limits": {..}}}
 * and writes one line per record: {"id", "config": {key: text} | null, "validatorError": text | null,
 * "deployError": text | null}. This is flinkmem's own code, written after the operator's main branch
 * (commit 6e9caeb), not a copy of it:
 *   - validatorError: what DefaultValidator.validateResourceRequirements refuses (each memory and cpu
 *     quantity of requests, then limits: memory through parseResourceMemoryString and MemorySize.parse,
 *     positive; cpu positive as fabric8's number; then a request above its limit, cpu as fabric8's numbers,
 *     memory as the bytes Flink reads);
 *   - config: what FlinkConfigBuilder.setResourceRequirements writes (memory: the request else the limit,
 *     parseResourceMemoryString of Quantity.toString(); cpu: the request else the limit, its numerical
 *     amount as a double; limit factors from ResourceConfigUtils.computeLimitFactor: limit / request of the
 *     numerical amounts as doubles, when both are set and the request is positive), each as the text the
 *     operator's Configuration gives Flink;
 *   - deployError: an exception the builder throws (a quantity fabric8 cannot turn into a number).
 */

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.flink.configuration.MemorySize;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

public final class OperatorResourcesHarness {

    private static final String[] QUANTITY_CLASSES = {
        "org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.Quantity",
        "io.fabric8.kubernetes.api.model.Quantity",
    };

    private final Method parse;
    private final Method numericalAmount;

    private OperatorResourcesHarness() throws ReflectiveOperationException {
        Class<?> quantity = null;
        for (String name : QUANTITY_CLASSES) {
            try {
                quantity = Class.forName(name);
                break;
            } catch (ClassNotFoundException absent) {
                // another shading
            }
        }
        if (quantity == null) {
            throw new ClassNotFoundException("no fabric8 Quantity in this Flink");
        }
        parse = quantity.getMethod("parse", String.class);
        numericalAmount = quantity.getMethod("getNumericalAmount");
    }

    /** new Quantity(text), as the operator's Jackson deserializes a quantity; its toString() is the text. */
    private Object quantity(String text) throws Exception {
        return call(parse, null, text);
    }

    private BigDecimal number(Object quantity) throws Exception {
        return (BigDecimal) call(numericalAmount, quantity);
    }

    private static Object call(Method method, Object target, Object... args) throws Exception {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException wrapped) {
            Throwable cause = wrapped.getCause();
            if (cause instanceof Exception) {
                throw (Exception) cause;
            }
            throw wrapped;
        }
    }

    /** The operator's parseResourceMemoryString: Flink's syntax first, else the normalised quantity. */
    private String memoryString(String memory) throws Exception {
        try {
            return MemorySize.parse(memory).toString();
        } catch (IllegalArgumentException notFlinks) {
            String normalized = memory.trim().replaceAll("\\s", "").toUpperCase();
            if (normalized.endsWith("B")) {
                normalized = normalized.substring(0, normalized.length() - 1);
            }
            if (normalized.endsWith("I")) {
                normalized = normalized.substring(0, normalized.length() - 1) + "i";
            }
            return number(quantity(normalized)) + "";
        }
    }

    private static Map<String, String> section(JsonNode resources, String name) {
        Map<String, String> values = new LinkedHashMap<>();
        JsonNode node = resources.get(name);
        if (node == null || !node.isObject()) {
            return values;
        }
        Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> field = fields.next();
            if (!field.getValue().isNull()) {
                values.put(field.getKey(), field.getValue().asText());
            }
        }
        return values;
    }

    private String validate(String component, Map<String, String> requests, Map<String, String> limits) {
        List<String> errors = new ArrayList<>();
        Map<String, Map<String, String>> sections = new LinkedHashMap<>();
        sections.put("requests", requests);
        sections.put("limits", limits);
        for (Map.Entry<String, Map<String, String>> section : sections.entrySet()) {
            for (String key : new String[] {"memory", "cpu"}) {
                String text = section.getValue().get(key);
                if (text == null) {
                    continue;
                }
                try {
                    Object q = quantity(text);
                    boolean positive =
                            key.equals("memory")
                                    ? MemorySize.parse(memoryString(q.toString())).getBytes() > 0
                                    : number(q).signum() > 0;
                    if (!positive) {
                        errors.add(component + " " + section.getKey() + " " + key + " must be positive");
                    }
                } catch (Exception unreadable) {
                    errors.add(component + " " + section.getKey() + " " + key + " parse error: " + unreadable);
                }
            }
        }
        for (String key : new String[] {"cpu", "memory"}) {
            if (!requests.containsKey(key) || !limits.containsKey(key)) {
                continue;
            }
            try {
                double request = comparable(key, quantity(requests.get(key)));
                double limit = comparable(key, quantity(limits.get(key)));
                if (request > limit) {
                    errors.add(component + " " + key + " request above limit");
                }
            } catch (Exception unreadable) {
                // reported above
            }
        }
        return errors.isEmpty() ? null : String.join("; ", errors);
    }

    private double comparable(String key, Object quantity) throws Exception {
        if (key.equals("memory")) {
            return MemorySize.parse(memoryString(quantity.toString())).getBytes();
        }
        return number(quantity).doubleValue();
    }

    private static String requestOrLimit(Map<String, String> requests, Map<String, String> limits, String key) {
        return requests.containsKey(key) ? requests.get(key) : limits.get(key);
    }

    private Double limitFactor(Map<String, String> requests, Map<String, String> limits, String key) throws Exception {
        if (!requests.containsKey(key) || !limits.containsKey(key)) {
            return null;
        }
        double request = number(quantity(requests.get(key))).doubleValue();
        double limit = number(quantity(limits.get(key))).doubleValue();
        if (request <= 0) {
            return null;
        }
        return limit / request;
    }

    private ObjectNode process(ObjectMapper mapper, String line) throws Exception {
        JsonNode record = mapper.readTree(line);
        ObjectNode result = mapper.createObjectNode();
        result.set("id", record.get("id"));
        String role = record.get("role").asText();
        String component = role.equals("jobmanager") ? "JobManager" : "TaskManager";
        JsonNode resources = record.get("resources");
        Map<String, String> requests = section(resources, "requests");
        Map<String, String> limits = section(resources, "limits");
        String validatorError = validate(component, requests, limits);
        result.put("validatorError", validatorError);
        ObjectNode config = mapper.createObjectNode();
        try {
            String memory = requestOrLimit(requests, limits, "memory");
            if (memory != null) {
                config.put(role + ".memory.process.size", memoryString(quantity(memory).toString()));
            }
            String cpu = requestOrLimit(requests, limits, "cpu");
            if (cpu != null) {
                // Configuration.set of a Double: Flink reads it back from Double.toString.
                config.put("kubernetes." + role + ".cpu.amount", Double.toString(number(quantity(cpu)).doubleValue()));
            }
            Double cpuFactor = limitFactor(requests, limits, "cpu");
            if (cpuFactor != null) {
                config.put("kubernetes." + role + ".cpu.limit-factor", Double.toString(cpuFactor));
            }
            Double memoryFactor = limitFactor(requests, limits, "memory");
            if (memoryFactor != null) {
                config.put("kubernetes." + role + ".memory.limit-factor", Double.toString(memoryFactor));
            }
            result.set("config", config);
            result.putNull("deployError");
        } catch (Exception failed) {
            result.putNull("config");
            result.put("deployError", failed.toString());
        }
        return result;
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, false, "UTF-8");
        System.setOut(System.err);
        OperatorResourcesHarness harness = new OperatorResourcesHarness();
        ObjectMapper mapper = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (!line.trim().isEmpty()) {
                out.println(mapper.writeValueAsString(harness.process(mapper, line)));
            }
        }
        out.flush();
    }
}
