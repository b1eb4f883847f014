// Package e2e reproduces the load balancer source-IP problem on one machine.
//
// The tests build a lab of Linux network namespaces (a client, a home NAT, the
// internet, a reference STUN server, a load balancer, a node and a pod), wire
// them with veth pairs and nftables, and run stund and stuncheck through it in
// every scenario users meet. They need root and live behind the `e2e` build
// tag:
//
//	sudo go test -count=1 -tags e2e ./e2e/...
//
// Outside CI a machine that cannot run the lab skips the tests and says why;
// with CI=true it fails instead.
package e2e
