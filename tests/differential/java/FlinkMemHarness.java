/*
 * flinkmem's reference harness: resolves JobManager memory with the real Flink classes.
 *
 * Usage: java -cp <this dir>:flink-dist-<version>.jar:bash-java-utils.jar FlinkMemHarness <flink version> [--verify]
 *
 * Reads flinkmem's batch input (JSON Lines) on stdin and writes one JSON line per non-blank input
 * line on stdout, in flinkmem's batch output format. Records with "role": "taskmanager" go to
 * TaskManagerHarness (see there; --verify adds its cross-checks); the others ("role" absent or
 * "jobmanager") are resolved the way `BashJavaUtils GET_JM_RESOURCE_PARAMS` does it in that Flink
 * version:
 *   1. the configuration is a Configuration holding plain string values, as `-D key=value`
 *      dynamic properties produce (ConfigurationUtils.createConfiguration -> setString);
 *   2. the process spec: 1.x JobManagerProcessUtils.processSpecFromConfigWithNewOptionToInterpretLegacyHeap
 *      with the legacy heap mapped to jobmanager.memory.heap.size (what BashJavaUtils passes, mode
 *      "standalone") or to jobmanager.memory.process.size (what the native Kubernetes client's
 *      getClusterSpecification passes, mode "native"); 2.x JobManagerProcessUtils.processSpecFromConfig;
 *   3. the total process size, as BashJavaUtils' breakdown log computes it before anything else is
 *      printed (the sum can overflow);
 *   4. generateJvmParametersStr(spec, config), which reads enable-jvm-direct-memory-limit;
 *   5. generateDynamicConfigsStr(spec).
 * Any exception makes the record invalid, with the exception class and message chain as the error.
 *
 * Extra fields beside flinkmem's format: "heapBelowMinimum" (heap < JobManagerOptions.MIN_JVM_HEAP_SIZE,
 * null when no spec was derived) and, for mode native, "k8s": the JobManager pod's memory request
 * and limit in MiB, computed by the real KubernetesJobManagerParameters and
 * KubernetesUtils.getResourceRequirements from a cluster specification whose master memory is
 * getMebiBytes() of the total process size (null when that size cannot be computed).
 *
 * Flink's own logging is kept off stdout: System.out is pointed at stderr before any Flink class
 * loads, and results go to the original stdout file descriptor.
 */

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.apache.flink.client.deployment.ClusterSpecification;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.JobManagerOptions;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.kubernetes.kubeclient.parameters.KubernetesJobManagerParameters;
import org.apache.flink.kubernetes.utils.KubernetesUtils;
import org.apache.flink.runtime.jobmanager.JobManagerProcessSpec;
import org.apache.flink.runtime.jobmanager.JobManagerProcessUtils;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonProcessingException;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.JsonNodeFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.NullNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

public final class FlinkMemHarness {

    /** A record the harness cannot even interpret (not JSON, wrong shapes, other Flink version). */
    private static final class InputError extends Exception {
        InputError(String message) {
            super(message);
        }
    }

    enum Mode {
        NATIVE,
        STANDALONE
    }

    /** A stand-in task manager size: only the master size of the cluster specification is read. */
    private static final int TASK_MANAGER_MIB = 1728;

    private final ObjectMapper mapper;
    private final JsonNodeFactory nodes;
    private final String flinkVersion;
    private final MethodHandle legacyAwareSpec;
    private final MethodHandle plainSpec;
    private final TaskManagerHarness taskManagers;

    private FlinkMemHarness(String flinkVersion, boolean verify) throws ReflectiveOperationException {
        this.flinkVersion = flinkVersion;
        this.nodes = JsonNodeFactory.withExactBigDecimals(true);
        this.taskManagers = new TaskManagerHarness(nodes, verify);
        this.mapper = new ObjectMapper();
        this.mapper.setNodeFactory(nodes);
        this.mapper.enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS);
        MethodHandles.Lookup lookup = MethodHandles.publicLookup();
        MethodHandle legacy;
        try {
            // Flink 1.x: public entry point that maps jobmanager.heap.size / .heap.mb / FLINK_JM_HEAP.
            legacy =
                    lookup.findStatic(
                            JobManagerProcessUtils.class,
                            "processSpecFromConfigWithNewOptionToInterpretLegacyHeap",
                            MethodType.methodType(
                                    JobManagerProcessSpec.class, Configuration.class, ConfigOption.class));
        } catch (NoSuchMethodException | IllegalAccessException absent) {
            legacy = null;
        }
        this.legacyAwareSpec = legacy;
        // Flink 2.x: the only entry point (package-private in 1.x, so looked up only when needed).
        this.plainSpec =
                legacy != null
                        ? null
                        : lookup.findStatic(
                                JobManagerProcessUtils.class,
                                "processSpecFromConfig",
                                MethodType.methodType(JobManagerProcessSpec.class, Configuration.class));
    }

    public static void main(String[] args) throws Exception {
        boolean verify = args.length == 2 && "--verify".equals(args[1]);
        if (args.length != 1 && !verify) {
            System.err.println("usage: FlinkMemHarness <flink version> [--verify]");
            System.exit(2);
        }
        Writer out =
                new BufferedWriter(
                        new OutputStreamWriter(
                                new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8),
                        1 << 16);
        System.setOut(System.err);
        FlinkMemHarness harness = new FlinkMemHarness(args[0], verify);
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 16);
        String line;
        while ((line = in.readLine()) != null) {
            if (line.trim().isEmpty()) {
                continue;
            }
            out.write(harness.process(line));
            out.write('\n');
            if (!in.ready()) {
                out.flush(); // nothing more buffered: answer now, for interactive use
            }
        }
        out.flush();
    }

    // ----------------------------------------------------------------------------------------------
    // One record

    String process(String line) throws JsonProcessingException {
        JsonNode id = NullNode.getInstance();
        ObjectNode result;
        try {
            JsonNode root;
            try {
                root = mapper.readTree(line);
            } catch (JsonProcessingException malformed) {
                throw new InputError("malformed JSON: " + malformed.getOriginalMessage());
            }
            if (root == null || !root.isObject()) {
                throw new InputError("a record must be a JSON object");
            }
            if (root.has("id")) {
                id = root.get("id");
            }
            Mode mode = parseMode(root.get("mode"));
            checkVersion(root.get("flinkVersion"));
            boolean taskManager = parseRole(root.get("role"));
            Configuration configuration = toConfiguration(root.get("config"));
            result =
                    taskManager
                            ? taskManagers.resolve(id, configuration, mode == Mode.NATIVE)
                            : resolve(id, configuration, mode);
        } catch (InputError error) {
            result = nodes.objectNode();
            result.set("id", id);
            result.put("valid", false);
            result.put("inputError", true);
            result.put("error", error.getMessage());
        }
        return mapper.writeValueAsString(result);
    }

    private static Mode parseMode(JsonNode node) throws InputError {
        if (node == null || node.isNull()) {
            return Mode.NATIVE;
        }
        if (!node.isTextual()) {
            throw new InputError("mode must be a string");
        }
        switch (node.asText().trim().toLowerCase(Locale.ROOT)) {
            case "":
            case "native":
                return Mode.NATIVE;
            case "standalone":
                return Mode.STANDALONE;
            default:
                throw new InputError("unknown mode '" + node.asText() + "'");
        }
    }

    /** True for a TaskManager record; "role" absent, null or "jobmanager" is a JobManager record. */
    private static boolean parseRole(JsonNode node) throws InputError {
        if (node == null || node.isNull()) {
            return false;
        }
        if (!node.isTextual()) {
            throw new InputError("role must be a string");
        }
        switch (node.asText().trim().toLowerCase(Locale.ROOT)) {
            case "jobmanager":
                return false;
            case "taskmanager":
                return true;
            default:
                throw new InputError("unknown role '" + node.asText() + "'");
        }
    }

    /** Accepts the spellings of this harness's release line: 1.20, 1.20.3, v1_20, v1_x, ... */
    private void checkVersion(JsonNode node) throws InputError {
        if (node == null || node.isNull()) {
            return;
        }
        if (!node.isTextual()) {
            throw new InputError("flinkVersion must be a string");
        }
        String requested = node.asText().trim();
        String normalized = requested.replace('_', '.');
        if (normalized.startsWith("v") || normalized.startsWith("V")) {
            normalized = normalized.substring(1);
        }
        String[] wanted = normalized.split("\\.", -1);
        String[] served = flinkVersion.split("\\.", -1);
        boolean matches =
                wanted.length >= 2
                        && wanted.length <= 3
                        && wanted[0].equals(served[0])
                        && (wanted[1].equalsIgnoreCase("x") || wanted[1].equals(served[1]));
        if (!matches) {
            throw new InputError(
                    "flinkVersion '" + requested + "' is not served by this harness (Flink " + flinkVersion + ")");
        }
    }

    /** The configuration `-D key=value` dynamic properties produce: every value a plain string. */
    private static Configuration toConfiguration(JsonNode node) throws InputError {
        if (node == null || !node.isObject()) {
            throw new InputError("config must be an object of strings");
        }
        Configuration configuration = new Configuration();
        Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
        while (fields.hasNext()) {
            Map.Entry<String, JsonNode> field = fields.next();
            if (!field.getValue().isTextual()) {
                throw new InputError("config value of '" + field.getKey() + "' must be a string");
            }
            configuration.setString(field.getKey(), field.getValue().asText());
        }
        return configuration;
    }

    private JobManagerProcessSpec processSpec(Configuration configuration, Mode mode) throws Throwable {
        if (legacyAwareSpec != null) {
            ConfigOption<MemorySize> target =
                    mode == Mode.STANDALONE
                            ? JobManagerOptions.JVM_HEAP_MEMORY
                            : JobManagerOptions.TOTAL_PROCESS_MEMORY;
            return (JobManagerProcessSpec) legacyAwareSpec.invokeExact(configuration, target);
        }
        return (JobManagerProcessSpec) plainSpec.invokeExact(configuration);
    }

    private ObjectNode resolve(JsonNode id, Configuration configuration, Mode mode) {
        ObjectNode result = nodes.objectNode();
        result.set("id", id);
        JobManagerProcessSpec spec;
        try {
            spec = processSpec(configuration, mode);
        } catch (Throwable failure) {
            rethrowFatal(failure);
            return invalid(result, failure, null, null);
        }
        MemorySize heap = spec.getJvmHeapMemorySize();
        boolean heapBelowMinimum = heap.compareTo(JobManagerOptions.MIN_JVM_HEAP_SIZE) < 0;
        ObjectNode k8s = mode == Mode.NATIVE ? kubernetesSizing(configuration, spec) : null;
        try {
            // BashJavaUtils.logMasterConfiguration evaluates these before printing any flag.
            MemorySize totalProcess = spec.getTotalProcessMemorySize();
            MemorySize totalFlink = spec.getTotalFlinkMemorySize();
            String jvmArgs = JobManagerProcessUtils.generateJvmParametersStr(spec, configuration);
            String dynamicConfigs = JobManagerProcessUtils.generateDynamicConfigsStr(spec);
            boolean directLimit = configuration.get(JobManagerOptions.JVM_DIRECT_MEMORY_LIMIT_ENABLED);

            result.put("valid", true);
            result.put("totalProcessMemory", totalProcess.getBytes());
            result.put("totalFlinkMemory", totalFlink.getBytes());
            result.put("jvmHeap", heap.getBytes());
            result.put("offHeap", spec.getJvmDirectMemorySize().getBytes());
            result.put("jvmMetaspace", spec.getJvmMetaspaceSize().getBytes());
            result.put("jvmOverhead", spec.getJvmOverheadSize().getBytes());
            if (directLimit) {
                result.put("jvmDirectMemory", spec.getJvmDirectMemorySize().getBytes());
            } else {
                result.putNull("jvmDirectMemory");
            }
            result.put("jvmArgs", jvmArgs);
            result.put("dynamicConfigs", dynamicConfigs);
            result.set("warnings", warnings(heap, heapBelowMinimum));
            result.putNull("error");
            result.put("heapBelowMinimum", heapBelowMinimum);
            result.set("k8s", k8s);
            return result;
        } catch (Throwable failure) {
            rethrowFatal(failure);
            return invalid(result, failure, heapBelowMinimum, k8s);
        }
    }

    private ObjectNode invalid(ObjectNode result, Throwable failure, Boolean heapBelowMinimum, ObjectNode k8s) {
        result.put("valid", false);
        for (String field :
                new String[] {
                    "totalProcessMemory", "totalFlinkMemory", "jvmHeap", "offHeap", "jvmMetaspace",
                    "jvmOverhead", "jvmDirectMemory", "jvmArgs", "dynamicConfigs"
                }) {
            result.putNull(field);
        }
        result.set("warnings", nodes.arrayNode());
        result.put("error", describe(failure));
        result.set("exceptions", exceptionClasses(nodes, failure));
        if (heapBelowMinimum == null) {
            result.putNull("heapBelowMinimum");
        } else {
            result.put("heapBelowMinimum", heapBelowMinimum.booleanValue());
        }
        result.set("k8s", k8s);
        return result;
    }

    private ArrayNode warnings(MemorySize heap, boolean heapBelowMinimum) {
        ArrayNode warnings = nodes.arrayNode();
        if (heapBelowMinimum) {
            // The text of JobManagerFlinkMemoryUtils' WARN line.
            warnings.add(
                    "The configured or derived JVM heap memory size ("
                            + heap.toHumanReadableString()
                            + ") is less than its recommended minimum value ("
                            + JobManagerOptions.MIN_JVM_HEAP_SIZE.toHumanReadableString()
                            + ")");
        }
        return warnings;
    }

    /**
     * The JobManager pod's memory as the native Kubernetes client sets it: request = getMebiBytes() of
     * the total process size, limit = (int) (request * kubernetes.jobmanager.memory.limit-factor).
     * Null when the total process size cannot be computed.
     */
    private ObjectNode kubernetesSizing(Configuration configuration, JobManagerProcessSpec spec) {
        int masterMiB;
        try {
            masterMiB = spec.getTotalProcessMemorySize().getMebiBytes();
        } catch (Throwable failure) {
            rethrowFatal(failure);
            return null;
        }
        ObjectNode k8s = nodes.objectNode();
        k8s.put("k8sMemoryMiB", masterMiB);
        try {
            ClusterSpecification cluster =
                    new ClusterSpecification.ClusterSpecificationBuilder()
                            .setMasterMemoryMB(masterMiB)
                            .setTaskManagerMemoryMB(TASK_MANAGER_MIB)
                            .setSlotsPerTaskManager(1)
                            .createClusterSpecification();
            KubernetesJobManagerParameters parameters =
                    new KubernetesJobManagerParameters(configuration, cluster);
            Object requirements =
                    resourceRequirements(
                            parameters.getJobManagerMemoryMB(), memoryLimitFactor(parameters));
            k8s.put("k8sMemoryMiB", mebibytes(mapValue(call(requirements, "getRequests"), "memory")));
            k8s.put("k8sLimitMiB", mebibytes(mapValue(call(requirements, "getLimits"), "memory")));
            k8s.putNull("error");
        } catch (Throwable failure) {
            rethrowFatal(failure);
            k8s.putNull("k8sLimitMiB");
            k8s.put("error", describe(failure));
        }
        return k8s;
    }

    /**
     * KubernetesJobManagerParameters.getJobManagerMemoryLimitFactor (1.15+, checks the factor is at
     * least 1); 1.0 before 1.15, which had no limit factor (limit = request).
     */
    private static double memoryLimitFactor(KubernetesJobManagerParameters parameters) throws Throwable {
        Method getter = findMethod(parameters.getClass(), "getJobManagerMemoryLimitFactor", 0);
        return getter == null ? 1.0 : (Double) invoke(getter, parameters);
    }

    /**
     * KubernetesUtils.getResourceRequirements for one CPU and no external resources, whatever its
     * shape in this line: (mem, cpu, resources) in 1.12; (requirements, mem, cpu, resources, keys) in
     * 1.13-1.14; (requirements, mem, memoryLimitFactor, cpu, cpuLimitFactor, resources, keys) from
     * 1.15. The fabric8 classes are shaded differently per line, so they are used reflectively.
     */
    static Object resourceRequirements(int memoryMiB, double memoryLimitFactor) throws Throwable {
        for (Method method : KubernetesUtils.class.getMethods()) {
            if (!method.getName().equals("getResourceRequirements")) {
                continue;
            }
            Class<?>[] types = method.getParameterTypes();
            Map<String, Object> none = Collections.emptyMap();
            switch (types.length) {
                case 3:
                    return invoke(method, null, memoryMiB, 1.0, none);
                case 5:
                    return invoke(method, null, newInstance(types[0]), memoryMiB, 1.0, none, none);
                case 7:
                    return invoke(
                            method, null, newInstance(types[0]), memoryMiB, memoryLimitFactor, 1.0, 1.0, none, none);
                default:
                    break;
            }
        }
        throw new IllegalStateException("no known KubernetesUtils.getResourceRequirements");
    }

    /** The MiB of a fabric8 Quantity in Flink's "<n>Mi" form. */
    static int mebibytes(Object quantity) throws Throwable {
        if (!"Mi".equals(call(quantity, "getFormat"))) {
            throw new IllegalStateException("unexpected memory quantity format " + quantity);
        }
        return Integer.parseInt((String) call(quantity, "getAmount"));
    }

    // ----------------------------------------------------------------------------------------------
    // Reflection, for the classes whose shape or package differs between Flink lines

    static Method findMethod(Class<?> owner, String name, int parameters) {
        for (Class<?> type = owner; type != null; type = type.getSuperclass()) {
            for (Method method : type.getDeclaredMethods()) {
                if (method.getName().equals(name) && method.getParameterCount() == parameters) {
                    method.setAccessible(true);
                    return method;
                }
            }
        }
        return null;
    }

    static Object invoke(Method method, Object target, Object... args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException wrapped) {
            throw wrapped.getCause();
        }
    }

    /** target.name(args...), a method found by name and argument count. */
    static Object call(Object target, String name, Object... args) throws Throwable {
        Method method = findMethod(target.getClass(), name, args.length);
        if (method == null) {
            throw new NoSuchMethodException(target.getClass().getName() + "." + name);
        }
        return invoke(method, target, args);
    }

    static Object mapValue(Object map, String key) {
        return ((Map<?, ?>) map).get(key);
    }

    static Object newInstance(Class<?> type) throws ReflectiveOperationException {
        return type.getDeclaredConstructor().newInstance();
    }

    // ----------------------------------------------------------------------------------------------
    // Errors

    static void rethrowFatal(Throwable failure) {
        if (failure instanceof VirtualMachineError) {
            throw (VirtualMachineError) failure;
        }
    }

    private static List<Throwable> causes(Throwable failure) {
        List<Throwable> chain = new ArrayList<>();
        for (Throwable cause = failure; cause != null && chain.size() < 16; cause = cause.getCause()) {
            if (chain.contains(cause)) {
                break;
            }
            chain.add(cause);
        }
        return chain;
    }

    static ArrayNode exceptionClasses(JsonNodeFactory nodes, Throwable failure) {
        ArrayNode chain = nodes.arrayNode();
        for (Throwable cause : causes(failure)) {
            chain.add(cause.getClass().getName());
        }
        return chain;
    }

    /** "Class: message; caused by: Class: message; ..." as Java prints the chain. */
    static String describe(Throwable failure) {
        StringBuilder text = new StringBuilder();
        for (Throwable cause : causes(failure)) {
            if (text.length() > 0) {
                text.append("; caused by: ");
            }
            text.append(cause.getClass().getName());
            if (cause.getMessage() != null) {
                text.append(": ").append(cause.getMessage());
            }
        }
        return text.toString();
    }
}
