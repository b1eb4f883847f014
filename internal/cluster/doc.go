// Package cluster is what stund and stuncheck both read of a Kubernetes
// cluster: how to reach the API (ServerConfig for a pod, ClientConfig for
// a user's kubeconfig), and an Index of whose address a source is — a
// node (its own addresses, or its pod-network gateway, the first address
// of its pod CIDR), a pod CIDR, a load balancer's ingress — with the
// nodes that run a ready endpoint. stund's classifier keeps an Index up to date from
// informers; stuncheck's diagnosis builds one from what it read once.
package cluster
