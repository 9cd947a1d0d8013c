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
 */

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.resources.ExternalResource;
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
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.Container;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.EnvVar;
import org.apache.flink.kubernetes.shaded.io.fabric8.kubernetes.api.model.Quantity;
import org.apache.flink.runtime.clusterframework.BootstrapTools;
import org.apache.flink.runtime.clusterframework.ContaineredTaskManagerParameters;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessSpec;
import org.apache.flink.runtime.clusterframework.TaskExecutorProcessUtils;
import org.apache.flink.runtime.externalresource.ExternalResourceUtils;
import org.apache.flink.runtime.resourcemanager.ResourceManagerFactory;
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
    private final Method effectiveForResourceManager;

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
                accessible(
                        org.apache.flink.runtime.resourcemanager.active.ActiveResourceManagerFactory.class
                                .getDeclaredMethod("getEffectiveConfigurationForResourceManager", Configuration.class));
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
                Configuration services =
                        effectiveForServices == null
                                ? configuration
                                : (Configuration) call(effectiveForServices, resourceManagerFactory, configuration);
                ResourceManagerRuntimeServicesConfiguration runtime =
                        (ResourceManagerRuntimeServicesConfiguration)
                                call(servicesConfiguration, resourceManagerFactory, services);
                WorkerResourceSpec worker = runtime.getSlotManagerConfiguration().getDefaultWorkerResourceSpec();
                Configuration resourceManager =
                        (Configuration) call(effectiveForResourceManager, resourceManagerFactory, services);

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
        result.put("slots", spec.getNumSlots());
        result.put("podMemoryMiB", spec.getTotalProcessMemorySize().getMebiBytes());
        ObjectNode resources = result.putObject("externalResources");
        for (Map.Entry<String, ExternalResource> entry : spec.getExtendedResources().entrySet()) {
            resources.put(entry.getKey(), entry.getValue().getValue().longValue());
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

    /** --verify, native: the pod Flink's Kubernetes resource manager driver would create for `spec`. */
    private ObjectNode pod(Configuration resourceManager, TaskExecutorProcessSpec spec) throws Exception {
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
        Map<String, String> externalKeys =
                ExternalResourceUtils.getExternalResourceConfigurationKeys(
                        flinkConfig, KubernetesConfigOptions.EXTERNAL_RESOURCE_KUBERNETES_CONFIG_KEY_SUFFIX);
        KubernetesTaskManagerParameters parameters =
                new KubernetesTaskManagerParameters(
                        flinkConfig,
                        POD_NAME,
                        dynamicProperties,
                        jvmMemOpts,
                        containered,
                        externalKeys,
                        Collections.emptySet());
        KubernetesPod pod =
                KubernetesTaskManagerFactory.buildTaskManagerKubernetesPod(new FlinkPod.Builder().build(), parameters);
        Container container = pod.getInternalResource().getSpec().getContainers().get(0);
        ObjectNode k8s = nodes.objectNode();
        Quantity memory = container.getResources().getRequests().get("memory");
        k8s.put("memory", memory.getAmount() + memory.getFormat());
        Quantity cpu = container.getResources().getRequests().get("cpu");
        k8s.put("cpu", cpu.getAmount() + cpu.getFormat());
        String env = null;
        for (EnvVar variable : container.getEnv()) {
            if ("FLINK_TM_JVM_MEM_OPTS".equals(variable.getName())) {
                env = variable.getValue();
            }
        }
        k8s.put("jvmMemOpts", env);
        List<String> args = new ArrayList<>(container.getArgs());
        k8s.put("args", String.join(" ", args));
        return k8s;
    }
}
