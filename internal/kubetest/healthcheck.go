package kubetest

import (
	"fmt"
	"net/http"
	"strconv"
)

// HealthCheck answers as kube-proxy's health check of Service
// Namespace/Name does on a node's healthCheckNodePort: 200 when the node
// has local endpoints and kube-proxy is healthy, else 503, with
// kube-proxy's JSON body and its X-Load-Balancing-Endpoint-Weight
// header. Serve it with httptest or http.Serve on the node's address.
type HealthCheck struct {
	Namespace, Name string
	// LocalEndpoints is the number of ready endpoints on the node.
	LocalEndpoints int
	// Unhealthy makes kube-proxy report itself unhealthy
	// (serviceProxyHealthy false), which answers 503 whatever the
	// endpoints.
	Unhealthy bool
}

// ServeHTTP writes the answer; like kube-proxy it ignores the path.
func (h HealthCheck) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(h.LocalEndpoints))
	if h.LocalEndpoints > 0 && !h.Unhealthy {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %v\n}",
		h.Namespace, h.Name, h.LocalEndpoints, !h.Unhealthy)
}
