// Package kube makes stund and stuncheck Kubernetes-aware: it names who
// rewrote a client's source address and what to change.
//
// For stund, a Classifier watches the Nodes, the Service that fronts stund
// and its EndpointSlices with shared informers, and classifies the source
// of every request as a client, a node, a pod, the load balancer or
// another private address, from an immutable snapshot swapped atomically
// on every change, so classifying costs a few map lookups and no lock.
// When sources are rewritten it logs a rate-limited warning naming the
// class and the node, and records a SourceIPRewritten Event on the
// Service, asynchronously, so a slow or unreachable API server never
// delays an answer.
//
// For stuncheck, ReadService reads a Service, its EndpointSlices and the
// Nodes, Targets turns the Service's load-balancer ingress into probe
// targets, and Diagnose turns all of it, with the probes' results, into
// findings with stable ids and fixes.
package kube
