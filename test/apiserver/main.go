// A standalone apiextensions-apiserver for nodediag's tests: the real
// CustomResourceDefinition machinery (schema validation, CEL rules, the
// status subresource, resourceVersion conflicts, watches) over etcd, without
// a core Kubernetes API. Delegated authentication and authorization,
// admission and priority-and-fairness are off (loopback only); discovery and
// OpenAPI v2 are on (clients expect them). The loopback bearer token is
// written to --token-file for the tests' kubeconfig.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/spf13/pflag"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	netutils "k8s.io/utils/net"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	fs := pflag.NewFlagSet("nodediag-apiserver", pflag.ExitOnError)
	fs.AddGoFlagSet(flag.CommandLine)
	o.AddFlags(fs)
	tokenFile := fs.String("token-file", "", "where to write the loopback bearer token")
	if err := fs.Parse(os.Args[1:]); err != nil {
		fail(err)
	}
	if err := o.ServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		fail(err)
	}
	o.RecommendedOptions.Authentication = nil
	o.RecommendedOptions.Authorization = nil
	o.RecommendedOptions.Admission = nil
	o.RecommendedOptions.CoreAPI = nil
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false
	if err := o.Complete(); err != nil {
		fail(err)
	}
	if err := o.Validate(); err != nil {
		fail(err)
	}
	if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		fail(err)
	}
	serverConfig := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	// No core API: informers over an empty fake clientset (no webhook services to resolve).
	serverConfig.SharedInformerFactory = informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	if err := o.ServerRunOptions.ApplyTo(&serverConfig.Config); err != nil {
		fail(err)
	}
	if err := o.RecommendedOptions.ApplyTo(serverConfig); err != nil {
		fail(err)
	}
	if err := o.APIEnablement.ApplyTo(&serverConfig.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
		fail(err)
	}
	defs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, openapinamer.NewDefinitionNamer(apiserver.Scheme))
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, openapinamer.NewDefinitionNamer(apiserver.Scheme))
	config := &apiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: apiserver.ExtraConfig{
			CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*o.RecommendedOptions.Etcd, serverConfig.ResourceTransformers, serverConfig.StorageObjectCountTracker),
			ServiceResolver:      nil,
			AuthResolverWrapper:  webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil, serverConfig.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
		},
	}
	completed := config.Complete()
	// apiextensions-apiserver turns discovery off (kube-apiserver aggregates it); alone, it must serve it.
	completed.GenericConfig.EnableDiscovery = true
	server, err := completed.New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		fail(err)
	}
	if *tokenFile != "" {
		if err := os.WriteFile(*tokenFile, []byte(server.GenericAPIServer.LoopbackClientConfig.BearerToken), 0o600); err != nil {
			fail(err)
		}
	}
	if err := server.GenericAPIServer.PrepareRun().RunWithContext(ctx); err != nil {
		fail(err)
	}
}
