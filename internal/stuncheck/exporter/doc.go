// Package exporter is stuncheck's Prometheus prober: an HTTP server that
// runs one check per /probe request, the way blackbox_exporter does, and
// answers with the verdicts as metrics, so that an alert fires as soon as a
// load balancer starts rewriting client addresses.
//
// A File holds the modules (named sets of transports, timeout, public IP
// source, allowed targets and TURN credentials) read from YAML; an
// Exporter serves /probe, /metrics, /healthz, / and /-/reload, caps the
// probes in flight, and caches the public IP learned from reference
// servers.
package exporter
