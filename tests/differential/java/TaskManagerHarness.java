/*
 * flinkmem's reference harness, TaskManager half: resolves TaskManager records with the real Flink
 * classes of the version on the classpath (called by FlinkMemHarness for "role": "taskmanager").
 *
 * Standalone (what bin/taskmanager.sh gets from BashJavaUtils GET_TM_RESOURCE_PARAMS): 1.x maps the
 * legacy heap to taskmanager.memory.flink.size (TaskExecutorProcessUtils.
 * getConfigurationMapLegacyTaskManagerHeapSizeToConfigOption), then TaskExecutorProcessUtils.
 * processSpecFromConfig, ProcessMemoryUtils.generateJvmParametersStr and TaskExecutorProcessUtils.
 * generateDynamicConfigsStr: the calls BashJavaUtils.getTmResourceParams makes. With --verify the
 * private BashJavaUtils.getTmResourceParams itself runs too and must give the same strings.
 *
 * Native Kubernetes (the pod the JobManager's resource manager creates), step by step:
 *   1. client: the legacy heap mapped to taskmanager.memory.process.size (1.x), processSpecFromConfig,
 *      its total process size in MiB and the slot count, as AbstractContainerizedClusterClientFactory;
 *   2. resource manager: KubernetesResourceManagerFactory's effective configuration (1.x: the same
 *      legacy mapping), its ResourceManagerRuntimeServicesConfiguration (KubernetesWorkerResourceSpecFactory
 *      builds the default WorkerResourceSpec, SlotManagerConfiguration checks it), then the resource
 *      manager's configuration (total process and total Flink sizes removed);
 *   3. pod: TaskExecutorProcessUtils.processSpecFromWorkerResourceSpec(resource manager configuration,
 *      worker); with --verify the real KubernetesTaskManagerParameters and KubernetesTaskManagerFactory
 *      build the pod, and its memory and CPU requests, FLINK_TM_JVM_MEM_OPTS and arguments are reported.
 * Any exception makes the record invalid; "failedStep" says where.
 *
 * One source for every line from 1.12 to 2.x: what differs in shape between lines (the legacy heap
 * mapping, the resource manager's configuration steps, the pod parameters, the fabric8 package,
 * slots and extended resources in the spec) is found reflectively, and the line's own code runs.
 * 1.12 has no getEffectiveConfigurationForResourceManager*: its ActiveResourceManagerFactory maps
 * the legacy heap in createActiveResourceManagerConfiguration and hands that configuration to both
 * the runtime services and the resource manager; its spec has no slots nor extended resources
 * ("slots" and "externalResources" are then null), and its pod carries the JVM options in the
 * container's start command instead of FLINK_TM_JVM_MEM_OPTS.
 */

import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.api.common.resources.Resource;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.MemorySize;
import org.apache.flink.configuration.TaskManagerOptions;
import org.apache.flink.kubernetes.configuration.KubernetesConfigOptions;
import org.apache.flink.kubernetes.entrypoint.KubernetesResourceManagerFactory;
import org.apache.flink.kubernetes.kubeclient.FlinkPod;
import org.apache.flink.kubernetes.kubeclient.factory.KubernetesTaskManagerFactory;
import org.apache.flink.kubernetes.kubeclient.parameters.KubernetesTaskManagerParameters;
import org.apache.flink.kubernetes.kubeclient.resources.KubernetesPod;
import org.apache.flink.runtime.clusterframework.BootstrapTools;
import org.apache.flink.runtime.clusterframework.ContaineredTaskManagerParameters;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;
import org.apache.flink.runtime.externalresource.ExternalResourceUtils;
import org.apache.flink.runtime.resourcemanager.ResourceManagerFactory;
import org.apache.flink.runtime.resourcemanager.active.ActiveResourceManagerFactory;
import org.apache.flink.runtime.resourcemanager.ResourceManagerRuntimeServicesConfiguration;
import org.apache.flink.runtime.resourcemanager.WorkerResourceSpec;
import org.apache.flink.runtime.util.config.memory.ProcessMemoryUtils;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.JsonNodeFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;

final class TaskManagerHarness {

    private static final String[] FIELDS = {
        "totalProcessMemory", "totalFlinkMemory", "frameworkHeap", "frameworkOffHeap", "taskHeap",
        "taskOffHeap", "networkMemory", "managedMemory", "jvmMetaspace", "jvmOverhead", "jvmHeap",
        "jvmDirectMemory", "jvmArgs", "dynamicConfigs"
    };
    private static final String POD_NAME = "flinkmem-taskmanager-1-1";

    private final JsonNodeFactory nodes;
    private final boolean verify;
    /** 1.x only: TaskExecutorProcessUtils.getConfigurationMapLegacyTaskManagerHeapSizeToConfigOption. */
    private final Method legacyMapping;
    private final Method launcher;
    private final KubernetesResourceManagerFactory resourceManagerFactory;
    /** 1.x only: ResourceManagerFactory.getEffectiveConfigurationForResourceManagerAndRuntimeServices. */
    private final Method effectiveForServices;
    private final Method servicesConfiguration;
    /** 1.13+ only: ActiveResourceManagerFactory.getEffectiveConfigurationForResourceManager. */
    private final Method effectiveForResourceManager;
    /** 1.12 only: ActiveResourceManagerFactory.createActiveResourceManagerConfiguration. */
    private final Method activeConfiguration;

    TaskManagerHarness(JsonNodeFactory nodes, boolean verify) throws ReflectiveOperationException {
        this.nodes = nodes;
        this.verify = verify;
        this.legacyMapping =
                optionalMethod(
                        TaskExecutorProcessUtils.class,
                        "getConfigurationMapLegacyTaskManagerHeapSizeToConfigOption",
                        Configuration.class,
                        ConfigOption.class);
        this.launcher =
                verify
                        ? accessible(
                                Class.forName("org.apache.flink.runtime.util.bash.BashJavaUtils")
                                        .getDeclaredMethod("getTmResourceParams", Configuration.class))
                        : null;
        this.resourceManagerFactory = KubernetesResourceManagerFactory.getInstance();
        this.effectiveForServices =
                optionalMethod(
                        ResourceManagerFactory.class,
                        "getEffectiveConfigurationForResourceManagerAndRuntimeServices",
                        Configuration.class);
        this.servicesConfiguration =
                accessible(
                        KubernetesResourceManagerFactory.class.getDeclaredMethod(
                                "createResourceManagerRuntimeServicesConfiguration", Configuration.class));
        this.effectiveForResourceManager =
                optionalMethod(
                        ActiveResourceManagerFactory.class,
                        "getEffectiveConfigurationForResourceManager",
                        Configuration.class);
        this.activeConfiguration =
                optionalMethod(
                        ActiveResourceManagerFactory.class, "createActiveResourceManagerConfiguration", Configuration.class);
    }

    private static Method accessible(Method method) {
        method.setAccessible(true);
        return method;
    }

    private static Method optionalMethod(Class<?> owner, String name, Class<?>... parameters) {
        try {
            return accessible(owner.getDeclaredMethod(name, parameters));
        } catch (NoSuchMethodException absent) {
            return null;
        }
    }

    private static Object call(Method method, Object target, Object... args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException wrapped) {
            throw wrapped.getCause();
        }
    }

    private Configuration mapLegacyHeap(Configuration configuration, ConfigOption<MemorySize> target)
            throws Throwable {
        if (legacyMapping == null) {
            return configuration;
        }
        return (Configuration) call(legacyMapping, null, configuration, target);
    }

    // ----------------------------------------------------------------------------------------------

    ObjectNode resolve(JsonNode id, Configuration configuration, boolean nativeMode) {
        ObjectNode result = nodes.objectNode();
        result.set("id", id);
        String step = nativeMode ? "client" : "launcher";
        try {
            TaskExecutorProcessSpec spec;
            if (nativeMode) {
                Configuration client = mapLegacyHeap(configuration, TaskManagerOptions.TOTAL_PROCESS_MEMORY);
                TaskExecutorProcessSpec clientSpec = TaskExecutorProcessUtils.processSpecFromConfig(client);
                clientSpec.getTotalProcessMemorySize().getMebiBytes();
                client.get(TaskManagerOptions.NUM_TASK_SLOTS);

                step = "resourceManager";
                Configuration services = configuration;
                if (effectiveForServices != null) {
                    services = (Configuration) call(effectiveForServices, resourceManagerFactory, configuration);
                } else if (activeConfiguration != null) {
                    services = (Configuration) call(activeConfiguration, resourceManagerFactory, configuration);
                }
                ResourceManagerRuntimeServicesConfiguration runtime =
                        (ResourceManagerRuntimeServicesConfiguration)
                                call(servicesConfiguration, resourceManagerFactory, services);
                WorkerResourceSpec worker = runtime.getSlotManagerConfiguration().getDefaultWorkerResourceSpec();
                Configuration resourceManager =
                        effectiveForResourceManager == null
                                ? services
                                : (Configuration) call(effectiveForResourceManager, resourceManagerFactory, services);

                step = "pod";
                spec = TaskExecutorProcessUtils.processSpecFromWorkerResourceSpec(resourceManager, worker);
                fill(result, spec);
                if (verify) {
                    result.set("k8s", pod(resourceManager, spec));
                }
            } else {
                Configuration mapped = mapLegacyHeap(configuration, TaskManagerOptions.TOTAL_FLINK_MEMORY);
                spec = TaskExecutorProcessUtils.processSpecFromConfig(mapped);
                fill(result, spec);
            }
        } catch (Throwable failure) {
            FlinkMemHarness.rethrowFatal(failure);
            invalid(result, failure, step);
        }
        if (verify && !nativeMode) {
            result.put("launcherAgrees", launcherAgrees(configuration, result));
        }
        return result;
    }

    private void fill(ObjectNode result, TaskExecutorProcessSpec spec) {
        // Evaluated as BashJavaUtils' summary log does, before any flag is generated.
        long totalProcess = spec.getTotalProcessMemorySize().getBytes();
        long totalFlink = spec.getTotalFlinkMemorySize().getBytes();
        String jvmArgs = ProcessMemoryUtils.generateJvmParametersStr(spec);
        String dynamicConfigs = TaskExecutorProcessUtils.generateDynamicConfigsStr(spec);
        result.put("valid", true);
        result.put("totalProcessMemory", totalProcess);
        result.put("totalFlinkMemory", totalFlink);
        result.put("frameworkHeap", spec.getFlinkMemory().getFrameworkHeap().getBytes());
        result.put("frameworkOffHeap", spec.getFlinkMemory().getFrameworkOffHeap().getBytes());
        result.put("taskHeap", spec.getTaskHeapSize().getBytes());
        result.put("taskOffHeap", spec.getTaskOffHeapSize().getBytes());
        result.put("networkMemory", spec.getNetworkMemSize().getBytes());
        result.put("managedMemory", spec.getManagedMemorySize().getBytes());
        result.put("jvmMetaspace", spec.getJvmMetaspaceSize().getBytes());
        result.put("jvmOverhead", spec.getJvmOverheadSize().getBytes());
        result.put("jvmHeap", spec.getJvmHeapMemorySize().getBytes());
        result.put("jvmDirectMemory", spec.getJvmDirectMemorySize().getBytes());
        result.put("jvmArgs", jvmArgs);
        result.put("dynamicConfigs", dynamicConfigs);
        result.set("warnings", nodes.arrayNode());
        result.putNull("error");
        result.put("cpuCores", spec.getCpuCores().getValue().doubleValue());
        result.put("podMemoryMiB", spec.getTotalProcessMemorySize().getMebiBytes());
        // 1.13+: the spec carries the slots and the extended resources; 1.12 has neither.
        Method slots = FlinkMemHarness.findMethod(spec.getClass(), "getNumSlots", 0);
        Method extended = FlinkMemHarness.findMethod(spec.getClass(), "getExtendedResources", 0);
        if (slots == null || extended == null) {
            result.putNull("slots");
            result.putNull("externalResources");
        } else {
            try {
                result.put("slots", (Integer) FlinkMemHarness.invoke(slots, spec));
                ObjectNode resources = result.putObject("externalResources");
                Map<?, ?> byName = (Map<?, ?>) FlinkMemHarness.invoke(extended, spec);
                for (Map.Entry<?, ?> entry : byName.entrySet()) {
                    resources.put((String) entry.getKey(), ((Resource) entry.getValue()).getValue().longValue());
                }
            } catch (Throwable failure) {
                FlinkMemHarness.rethrowFatal(failure);
                throw new IllegalStateException("reading the spec failed", failure);
            }
        }
        result.putNull("failedStep");
    }

    private void invalid(ObjectNode result, Throwable failure, String step) {
        result.put("valid", false);
        for (String field : FIELDS) {
            result.putNull(field);
        }
        result.set("warnings", nodes.arrayNode());
        result.put("error", FlinkMemHarness.describe(failure));
        result.set("exceptions", FlinkMemHarness.exceptionClasses(nodes, failure));
        result.put("failedStep", step);
    }

    /** --verify, standalone: BashJavaUtils.getTmResourceParams itself gives the same strings (or fails alike). */
    private boolean launcherAgrees(Configuration configuration, ObjectNode result) {
        try {
            @SuppressWarnings("unchecked")
            List<String> params = (List<String>) call(launcher, null, configuration);
            return result.get("valid").asBoolean()
                    && params.equals(
                            Arrays.asList(result.get("jvmArgs").asText(), result.get("dynamicConfigs").asText()));
        } catch (Throwable failure) {
            FlinkMemHarness.rethrowFatal(failure);
            return !result.get("valid").asBoolean()
                    && FlinkMemHarness.describe(failure).equals(result.get("error").asText());
        }
    }

    /**
     * --verify, native: the pod Flink's Kubernetes resource manager driver would create for `spec`
     * (KubernetesResourceManagerDriver.createKubernetesTaskManagerParameters, then
     * KubernetesTaskManagerFactory.buildTaskManagerKubernetesPod), whatever their shapes in this line.
     */
    private ObjectNode pod(Configuration resourceManager, TaskExecutorProcessSpec spec) throws Throwable {
        Configuration flinkConfig = new Configuration(resourceManager);
        // What the Kubernetes entrypoint sets before the resource manager starts.
        flinkConfig.set(KubernetesConfigOptions.CLUSTER_ID, "flinkmem");
        if (!flinkConfig.contains(TaskManagerOptions.RPC_PORT)) {
            flinkConfig.setString(TaskManagerOptions.RPC_PORT.key(), "6122");
        }
        ContaineredTaskManagerParameters containered = ContaineredTaskManagerParameters.create(flinkConfig, spec);
        Configuration taskManagerConfig = new Configuration(flinkConfig);
        taskManagerConfig.set(TaskManagerOptions.TASK_MANAGER_RESOURCE_ID, POD_NAME);
        String dynamicProperties = BootstrapTools.getDynamicPropertiesAsString(flinkConfig, taskManagerConfig);
        String jvmMemOpts = ProcessMemoryUtils.generateJvmParametersStr(spec);
        String suffix = KubernetesConfigOptions.EXTERNAL_RESOURCE_KUBERNETES_CONFIG_KEY_SUFFIX;
        Object parameters = null;
        for (Constructor<?> constructor : KubernetesTaskManagerParameters.class.getConstructors()) {
            switch (constructor.getParameterCount()) {
                case 5: // 1.12: (config, pod name, dynamic properties, containered, amounts by config key)
                    parameters =
                            newInstance(
                                    constructor,
                                    flinkConfig,
                                    POD_NAME,
                                    dynamicProperties,
                                    containered,
                                    staticCall(ExternalResourceUtils.class, "getExternalResources", flinkConfig, suffix));
                    break;
                case 6: // 1.13-1.15: (..., JVM memory options, containered, config keys by resource)
                case 7: // 1.16+: (..., blocked nodes)
                    Object keys =
                            staticCall(
                                    ExternalResourceUtils.class,
                                    "getExternalResourceConfigurationKeys",
                                    flinkConfig,
                                    suffix);
                    parameters =
                            constructor.getParameterCount() == 6
                                    ? newInstance(
                                            constructor,
                                            flinkConfig,
                                            POD_NAME,
                                            dynamicProperties,
                                            jvmMemOpts,
                                            containered,
                                            keys)
                                    : newInstance(
                                            constructor,
                                            flinkConfig,
                                            POD_NAME,
                                            dynamicProperties,
                                            jvmMemOpts,
                                            containered,
                                            keys,
                                            Collections.emptySet());
                    break;
                default:
                    break;
            }
        }
        if (parameters == null) {
            throw new IllegalStateException("no known KubernetesTaskManagerParameters constructor");
        }
        Method build = FlinkMemHarness.findMethod(KubernetesTaskManagerFactory.class, "buildTaskManagerKubernetesPod", 2);
        KubernetesPod pod =
                build != null
                        ? (KubernetesPod) FlinkMemHarness.invoke(build, null, new FlinkPod.Builder().build(), parameters)
                        : (KubernetesPod) staticCall(KubernetesTaskManagerFactory.class, "buildTaskManagerKubernetesPod", parameters);
        Object podSpec = FlinkMemHarness.call(pod.getInternalResource(), "getSpec");
        Object container = ((List<?>) FlinkMemHarness.call(podSpec, "getContainers")).get(0);
        Object resources = FlinkMemHarness.call(container, "getResources");
        Object requests = FlinkMemHarness.call(resources, "getRequests");
        Object limits = FlinkMemHarness.call(resources, "getLimits");
        ObjectNode k8s = nodes.objectNode();
        k8s.put("memory", quantity(FlinkMemHarness.mapValue(requests, "memory")));
        k8s.put("memoryLimit", quantity(FlinkMemHarness.mapValue(limits, "memory")));
        k8s.put("cpu", quantity(FlinkMemHarness.mapValue(requests, "cpu")));
        String env = null;
        for (Object variable : (List<?>) FlinkMemHarness.call(container, "getEnv")) {
            if ("FLINK_TM_JVM_MEM_OPTS".equals(FlinkMemHarness.call(variable, "getName"))) {
                env = (String) FlinkMemHarness.call(variable, "getValue");
            }
        }
        List<String> args = new ArrayList<>();
        for (Object arg : (List<?>) FlinkMemHarness.call(container, "getArgs")) {
            args.add((String) arg);
        }
        String joined = String.join(" ", args);
        if (env == null) {
            // 1.12: the JVM options are part of the start command in the container's arguments.
            Matcher flags = JVM_MEMORY_FLAGS.matcher(joined);
            env = flags.find() ? flags.group() : null;
        }
        k8s.put("jvmMemOpts", env);
        k8s.put("args", joined);
        return k8s;
    }

    private static final Pattern JVM_MEMORY_FLAGS =
            Pattern.compile("-Xmx\\d+ -Xms\\d+ -XX:MaxDirectMemorySize=\\d+ -XX:MaxMetaspaceSize=\\d+");

    private static String quantity(Object quantity) throws Throwable {
        return FlinkMemHarness.call(quantity, "getAmount") + (String) FlinkMemHarness.call(quantity, "getFormat");
    }

    private static Object newInstance(Constructor<?> constructor, Object... args) throws Throwable {
        try {
            return constructor.newInstance(args);
        } catch (InvocationTargetException wrapped) {
            throw wrapped.getCause();
        }
    }

    private static Object staticCall(Class<?> owner, String name, Object... args) throws Throwable {
        Method method = FlinkMemHarness.findMethod(owner, name, args.length);
        if (method == null) {
            throw new NoSuchMethodException(owner.getName() + "." + name);
        }
        return FlinkMemHarness.invoke(method, null, args);
    }
}
