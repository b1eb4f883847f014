// Package charttest holds the tests of the Helm chart in charts/stund.
//
// The tests build Helm (helm.sh/helm/v3, pinned in HelmModule) from the Go
// module proxy once per run, lint the chart with `helm lint --strict`, render
// it with `helm template` for the default values and the values files in
// testdata/, decode every rendered manifest strictly into the typed Kubernetes
// API objects (unknown fields fail) and assert the fields that keep the
// client's source IP and make the pods safe to run. They also start the real
// stund with the rendered arguments and probes, and run the helm test hook's
// script against a stand-in stuncheck.
//
// Set STUND_HELM to a helm v3.22 binary to skip the build.
package charttest

// HelmModule is the Helm command the tests build and run.
const HelmModule = "helm.sh/helm/v3/cmd/helm@v3.22.0"
