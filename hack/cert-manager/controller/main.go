// Command controller runs cert-manager's certificate controllers against one cluster: the
// Issuer and ClusterIssuer controllers with the CA and self-signed issuers, the
// CertificateRequest approver and signers for those issuers, and the whole Certificate lifecycle
// (trigger, key manager, request manager, issuing, readiness, revision manager).
//
// cert-manager publishes its controllers as packages of the github.com/cert-manager/cert-manager
// module, but its own command (cmd/controller, module controller-binary) is not served by the Go
// module proxy. This is a small stand-in for that command, written for flinkmem's local control
// plane: hack/tools.sh builds it against the pinned cert-manager release. It has no leader
// election, metrics or health endpoints, and no ACME, Vault or Venafi issuers.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"github.com/cert-manager/cert-manager/pkg/util"

	// Each of these registers itself with controller.Known() when imported.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	// The issuer implementations the Issuer controllers set up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	namespace := flag.String("namespace", "", "only this namespace (default: all)")
	clusterResources := flag.String("cluster-resource-namespace", "cert-manager",
		"namespace of the Secrets that ClusterIssuers refer to")
	workers := flag.Int("concurrent-workers", 5, "workers per controller")
	qps := flag.Float64("kube-api-qps", 20, "client-side QPS towards the API server")
	burst := flag.Int("kube-api-burst", 50, "client-side burst towards the API server")
	version := flag.Bool("version", false, "print the cert-manager version and exit")
	logf.InitLogs()
	klog.InitFlags(nil) // -v and the other klog flags
	flag.Parse()
	if *version {
		fmt.Println(util.VersionInfo().GitVersion)
		return
	}
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "controller: --kubeconfig is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx = logf.NewContext(ctx, logf.Log, "controller")
	err := run(ctx, controller.ContextOptions{
		Kubeconfig:         *kubeconfig,
		KubernetesAPIQPS:   float32(*qps),
		KubernetesAPIBurst: *burst,
		Namespace:          *namespace,
		IssuerOptions:      controller.IssuerOptions{ClusterResourceNamespace: *clusterResources},
	}, *workers)
	logf.FlushLogs()
	if err != nil {
		fmt.Fprintf(os.Stderr, "controller: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts controller.ContextOptions, workers int) error {
	log := logf.FromContext(ctx)
	log.Info("starting cert-manager controllers", "version", util.VersionInfo().GitVersion)
	factory, err := controller.NewContextFactory(ctx, opts)
	if err != nil {
		return err
	}
	shared, err := factory.Build()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(controller.Known()))
	for name := range controller.Known() {
		names = append(names, name)
	}
	sort.Strings(names)
	group, ctx := errgroup.WithContext(ctx)
	for _, name := range names {
		// Constructing a controller registers the informers it needs with the shared factories,
		// so every one is built before the factories start.
		loop, err := controller.Known()[name](factory)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		log.Info("starting controller", "controller", name)
		group.Go(func() error { return loop.Run(workers, ctx) })
	}
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	return group.Wait()
}
