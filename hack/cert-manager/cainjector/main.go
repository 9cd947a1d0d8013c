// Command cainjector runs cert-manager's CA injector against one cluster: it copies the CA of the
// Certificate named in a `cert-manager.io/inject-ca-from` annotation into the caBundle of
// webhook configurations, APIServices and CRD conversion webhooks.
//
// cert-manager's own command (cmd/cainjector, module cainjector-binary) is not served by the Go
// module proxy; this stand-in, written for flinkmem's local control plane, runs the injectors of
// the github.com/cert-manager/cert-manager module in a controller-runtime manager, without leader
// election, metrics or health endpoints.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	apiext "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	apireg "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cmscheme "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/scheme"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"
)

func main() {
	// controller-runtime defines --kubeconfig itself (ctrl.GetConfig reads it).
	namespace := flag.String("namespace", "", "only this namespace (default: all)")
	version := flag.Bool("version", false, "print the cert-manager version and exit")
	logf.InitLogs()
	klog.InitFlags(nil) // -v and the other klog flags
	flag.Parse()
	if *version {
		fmt.Println(util.VersionInfo().GitVersion)
		return
	}
	ctrl.SetLogger(logf.Log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "cainjector")
	err := run(ctx, *namespace)
	logf.FlushLogs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cainjector: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, namespace string) error {
	config, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	config = util.RestConfigWithUserAgent(config, "cainjector")
	scheme := runtime.NewScheme()
	utilruntime.Must(kscheme.AddToScheme(scheme))
	utilruntime.Must(cmscheme.AddToScheme(scheme))
	utilruntime.Must(apiext.AddToScheme(scheme))
	utilruntime.Must(apireg.AddToScheme(scheme))
	options := ctrl.Options{
		Scheme: scheme,
		// Secrets are read directly when an injectable is reconciled instead of being cached:
		// a cluster may hold many large ones that the injector never needs.
		Client:  client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics: metricsserver.Options{BindAddress: "0"},
	}
	if namespace != "" {
		options.Cache.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	manager, err := ctrl.NewManager(config, options)
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	setup := cainjector.SetupOptions{
		Namespace:                    namespace,
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor: map[string]bool{
			cainjector.MutatingWebhookConfigurationName:   true,
			cainjector.ValidatingWebhookConfigurationName: true,
			cainjector.APIServiceName:                     true,
			cainjector.CustomResourceDefinitionName:       true,
		},
	}
	if err := cainjector.RegisterAllInjectors(ctx, manager, setup); err != nil {
		return fmt.Errorf("registering the injectors: %w", err)
	}
	logf.FromContext(ctx).Info("starting cert-manager cainjector", "version", util.VersionInfo().GitVersion)
	return manager.Start(ctx)
}
