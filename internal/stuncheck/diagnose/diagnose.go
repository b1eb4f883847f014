// Package diagnose is stuncheck's Kubernetes diagnosis: ReadService
// reads a Service, its EndpointSlices and the Nodes, Targets turns the
// Service's load-balancer ingress into probe targets, CheckHealth asks
// kube-proxy's health check of the Service on every node, and Diagnose
// turns all of it, with the probes' results, into findings with stable
// ids and fixes.
package diagnose

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/stund/stund/internal/cluster"
	"github.com/stund/stund/pkg/check"
)

// Finding ids. They are stuncheck's JSON interface: never rename one.
const (
	IDETPCluster            = "etp-cluster"
	IDSNATNodeIP            = "snat-node-ip"
	IDSNATNodeGateway       = "snat-node-gateway"
	IDSNATPodCIDR           = "snat-pod-cidr"
	IDSNATLBAddress         = "snat-lb-address"
	IDIPModeProxy           = "ipmode-proxy"
	IDNoReadyEndpoints      = "no-ready-endpoints"
	IDEndpointsNotOnAll     = "endpoints-not-on-all-nodes"
	IDSessionAffinityUDP    = "session-affinity-udp"
	IDMixedProtocol         = "mixed-protocol"
	IDNoLBIngress           = "no-lb-ingress"
	IDNodesUnreadable       = "nodes-unreadable"
	IDProxyProtocol         = "proxy-protocol-enabled"
	IDAWSNLBIPTargetTCP     = "aws-nlb-ip-target-tcp"
	IDAWSPreserveClientOff  = "aws-preserve-client-ip-off"
	IDDigitalOceanSourceIP  = "digitalocean-source-ip"
	IDHetznerNoUDP          = "hetzner-no-udp"
	IDHetznerTCPProxy       = "hetzner-tcp-proxy"
	IDOCIPreserveSourceOff  = "oci-preserve-source-off"
	IDLinodeTCPProxy        = "linode-tcp-proxy"
	IDLinodeUDPBeta         = "linode-udp-beta"
	IDAzureFloatingIPOff    = "azure-floating-ip-disabled"
	IDHealthCheck           = "health-check"
	excludeFromLBLabel      = "node.kubernetes.io/exclude-from-external-load-balancers"
	maxNamesInMessage       = 5
	annAWSTargetType        = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
	annAWSTargetGroupAttrs  = "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
	annAWSProxyProtocol     = "service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"
	annDOProxyProtocol      = "service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol"
	annHetznerProxyProtocol = "load-balancer.hetzner.cloud/uses-proxyprotocol"
	annOCILBType            = "oci.oraclecloud.com/load-balancer-type"
	annOCIPreserveSource    = "oci-network-load-balancer.oraclecloud.com/is-preserve-source"
	annOCIPPv2              = "oci-network-load-balancer.oraclecloud.com/is-ppv2-enabled"
	annLinodeProxyProtocol  = "service.beta.kubernetes.io/linode-loadbalancer-proxy-protocol"
	annAzureFloatingIPOff   = "service.beta.kubernetes.io/azure-disable-load-balancer-floating-ip"
)

// proxyFlags is how stund learns clients' addresses from PROXY headers.
const proxyFlags = "run stund with --proxy-protocol --proxy-trusted-cidr <the load balancer's source addresses>"

// Diagnose explains the path to a Service from the Service, its
// EndpointSlices, the Nodes and the probes stuncheck sent to its
// load-balancer ingress: why sources are (or would be) rewritten, or
// traffic dropped, and what to change. Findings come most severe first.
func Diagnose(cl *Cluster, probes []check.Probe) []check.Finding {
	d := &diagnosis{cl: cl, svc: cl.Service, ref: cl.Service.Namespace + "/" + cl.Service.Name, out: []check.Finding{}}
	for _, p := range probes {
		d.unanswered = d.unanswered || p.Reason == check.ReasonNoResponse
		if p.Verdict == check.Rewritten {
			d.rewritten = true
			d.tcpRewritten = d.tcpRewritten || p.Transport == check.TCP
		}
		if p.Transport == check.TCP {
			d.tcpUnanswered = d.tcpUnanswered || !p.Mapped.IsValid()
			d.tcpPreserved = d.tcpPreserved || p.Verdict == check.Preserved
		}
	}
	d.trafficPolicy()
	d.mappedAddresses(probes)
	d.ingress()
	d.endpoints()
	d.healthChecks()
	d.ports()
	d.providers()
	check.SortFindings(d.out)

	return d.out
}

type diagnosis struct {
	cl        *Cluster
	svc       *corev1.Service
	ref       string // namespace/name
	rewritten bool   // a probe saw a rewritten source
	// tcpRewritten: a TCP probe did; tcpUnanswered: one got no answer;
	// tcpPreserved: one saw the client's address.
	tcpRewritten, tcpUnanswered, tcpPreserved bool
	// unanswered: a probe got no answer at all.
	unanswered bool
	// notOnAll: endpoints-not-on-all-nodes was found.
	notOnAll bool
	out      []check.Finding
}

func (d *diagnosis) add(id string, sev check.Severity, fix, format string, a ...any) {
	d.out = append(d.out, check.Finding{ID: id, Severity: sev, Message: fmt.Sprintf(format, a...), Fix: fix})
}

// errorIf is error when a probe saw the source rewritten, else warning:
// a setting that rewrites sources on some paths.
func (d *diagnosis) errorIf(b bool) check.Severity {
	if b {
		return check.SeverityError
	}

	return check.SeverityWarning
}

func (d *diagnosis) patchETPLocal() string {
	return fmt.Sprintf(`Set externalTrafficPolicy: Local: kubectl -n %s patch service %s -p '{"spec":{"externalTrafficPolicy":"Local"}}' `+
		`(Helm chart: service.externalTrafficPolicy=Local). The load balancer then sends traffic only to nodes with a ready stund pod, `+
		`which see the client's own address.`, d.svc.Namespace, d.svc.Name)
}

func (d *diagnosis) trafficPolicy() {
	if !cluster.IsLoadBalancerOrNodePort(d.svc) || cluster.IsLocal(d.svc) {
		return
	}
	d.add(IDETPCluster, d.errorIf(d.rewritten), d.patchETPLocal(),
		"Service %s has externalTrafficPolicy: Cluster: kube-proxy masquerades clients from outside the cluster, to the node's own address "+
			"when it forwards them to a stund pod on another node and to the node's pod-network gateway when the pod runs on that node, "+
			"so stund answers clients with a node's address.", d.ref)
}

// mappedAddresses names the owner of every rewritten address the probes
// saw: a node (its own address, or its pod-network gateway), a pod CIDR,
// or the load balancer.
func (d *diagnosis) mappedAddresses(probes []check.Probe) {
	snap := cluster.NewIndex(ptrs(d.cl.Nodes), []*corev1.Service{d.svc}, nil, nil)
	// One finding per owner (a node, its pod-network gateway, its pod
	// CIDR, the load balancer), naming every address of it the probes saw
	// and over what.
	type owner struct {
		kind    cluster.Kind
		name    string
		gateway bool
	}
	var order []owner
	seen := map[owner][]string{}
	trs := map[owner][]string{}
	for _, p := range probes {
		if !p.Mapped.IsValid() || p.Verdict == check.Preserved {
			continue
		}
		ip := p.Mapped.Addr().Unmap()
		w := snap.Lookup(ip)
		o := owner{w.Kind, w.Node, w.Gateway}
		switch w.Kind {
		case cluster.Node, cluster.Pod, cluster.LB:
		default:
			continue
		}
		if _, ok := seen[o]; !ok {
			order = append(order, o)
		}
		if !slices.Contains(seen[o], ip.String()) {
			seen[o] = append(seen[o], ip.String())
		}
		if !slices.Contains(trs[o], string(p.Transport)) {
			trs[o] = append(trs[o], string(p.Transport))
		}
	}
	for _, o := range order {
		ips, over := strings.Join(seen[o], " and "), strings.Join(trs[o], " and ")
		switch o.kind {
		case cluster.Node:
			if o.gateway {
				d.nodeGateway(ips, over, o.name)

				break
			}
			fix := "Set externalTrafficPolicy: Local (see etp-cluster): with Cluster, kube-proxy masquerades traffic it forwards to the pod."
			if cluster.IsLocal(d.svc) {
				fix = "externalTrafficPolicy is already Local, so the node's CNI or a node-level rule rewrites the source: " +
					"with Cilium use the dsr load-balancer mode (hybrid mode SNATs UDP), and check for masquerade rules " +
					"(ip-masq-agent, egress gateways) that match traffic to pods."
			}
			d.add(IDSNATNodeIP, check.SeverityError, fix,
				"stund saw %s over %s: the address of node %q, which source-NATed the client on its way to the pod.", ips, over, o.name)
		case cluster.Pod:
			d.add(IDSNATPodCIDR, check.SeverityError,
				"Send STUN traffic to stund without a proxy pod in between (no ingress controller, sidecar or userspace proxy), "+
					"and with Cilium or another eBPF dataplane use a mode without SNAT for this Service (dsr).",
				"stund saw %s over %s: inside the pod CIDR of node %q, so a pod (a proxy, an ingress controller, a sidecar) "+
					"or the CNI relayed the client.", ips, over, o.name)
		case cluster.LB:
			d.add(IDSNATLBAddress, check.SeverityError,
				"Use a passthrough load balancer (not a proxy) for stund, e.g. an AWS NLB, a GCP passthrough network load balancer or MetalLB, "+
					"with externalTrafficPolicy: Local; or turn on PROXY protocol at the load balancer and "+proxyFlags+".",
				"stund saw %s over %s: the load balancer's own ingress address, so the load balancer is a proxy that opens its own connections.", ips, over)
		}
	}
}

// nodeGateway explains a source at node's pod-network gateway: kube-proxy
// masquerades clients it delivers to a pod on the node that received them
// to that address (externalTrafficPolicy Cluster; to the node's own
// address when it forwards them to another node, snat-node-ip). With Local
// it does not masquerade clients from outside the cluster.
func (d *diagnosis) nodeGateway(ips, over, node string) {
	saw := fmt.Sprintf("stund saw %s over %s: the pod-network gateway of node %q (the first address of its pod CIDR, "+
		"the node's own address on the pod network)", ips, over, node)
	if cluster.IsLocal(d.svc) {
		d.add(IDSNATNodeGateway, check.SeverityError,
			fmt.Sprintf("externalTrafficPolicy is already Local, so kube-proxy does not masquerade clients from outside the cluster: "+
				"find the masquerade rule on node %q that matches traffic to pods, the CNI's or one added by hand "+
				"(iptables -t nat -S POSTROUTING, nft list ruleset), and keep it off traffic to stund. "+
				"A probe from inside the cluster can be masqueraded whatever the policy (kube-proxy treats traffic from pods "+
				"to the load balancer's address as Cluster, kubernetes#98069): probe from outside.", node),
			"%s: node %q masqueraded the client on its way into the pod network.", saw, node)

		return
	}
	d.add(IDSNATNodeGateway, check.SeverityError,
		"Set externalTrafficPolicy: Local (see etp-cluster): with Cluster, kube-proxy masquerades every client from outside the cluster, "+
			"to the pod-network gateway when the stund pod runs on the node that received the traffic, "+
			"and to the node's own address when it forwards the traffic to another node.",
		"%s: kube-proxy on node %q masqueraded the client on its way to the stund pod on that node, "+
			"as it does with externalTrafficPolicy: Cluster; no proxy pod is involved.", saw, node)
}

func (d *diagnosis) ingress() {
	if d.svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(d.svc.Status.LoadBalancer.Ingress) == 0 {
		d.add(IDNoLBIngress, check.SeverityError,
			fmt.Sprintf("kubectl -n %s describe service %s shows the load-balancer controller's events; "+
				"check that the cluster has one (cloud controller, MetalLB) and that it accepts the Service's protocols and annotations.", d.svc.Namespace, d.svc.Name),
			"Service %s has no load-balancer ingress address yet: there is nothing to probe.", d.ref)
	}
	if d.svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		d.add(IDNoLBIngress, check.SeverityError,
			"Expose stund with a Service of type LoadBalancer (the Helm chart's default).",
			"Service %s is of type %s, not LoadBalancer: it has no load-balancer ingress to probe.", d.ref, d.svc.Spec.Type)
	}
	for _, in := range d.svc.Status.LoadBalancer.Ingress {
		if in.IPMode == nil || *in.IPMode != corev1.LoadBalancerIPModeProxy {
			continue
		}
		addr := in.IP
		if addr == "" {
			addr = in.Hostname
		}
		d.add(IDIPModeProxy, d.errorIf(d.rewritten),
			"Turn on PROXY protocol at the load balancer and "+proxyFlags+"; or use a passthrough (network, not proxy) load balancer with externalTrafficPolicy: Local.",
			"Load-balancer ingress %s of Service %s has ipMode: Proxy: the load balancer is a proxy, and packets reach the nodes from it, "+
				"not from the client.", addr, d.ref)
	}
}

func (d *diagnosis) endpoints() {
	ready := cluster.ReadyEndpointNodes(ptrs(d.cl.Slices))
	total := 0
	for _, s := range d.cl.Slices {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				total++
			}
		}
	}
	if total == 0 {
		d.add(IDNoReadyEndpoints, check.SeverityError,
			fmt.Sprintf("Check the stund pods: kubectl -n %s get pods,endpointslices -l app.kubernetes.io/name=stund; "+
				"they must be Ready (/readyz) and match the Service's selector.", d.svc.Namespace),
			"Service %s has no ready endpoints: the load balancer has nowhere to send traffic.", d.ref)

		return
	}
	if !cluster.IsLocal(d.svc) || !cluster.IsLoadBalancerOrNodePort(d.svc) {
		return
	}
	if d.cl.NodesErr != nil {
		d.add(IDNodesUnreadable, check.SeverityInfo,
			"Grant get/list on nodes (cluster-scoped) to run every check: kubectl auth can-i list nodes.",
			"The Nodes could not be read (%v), so stuncheck cannot say which nodes drop traffic or whose address the server saw.", d.cl.NodesErr)

		return
	}
	var missing []string
	eligible := 0
	for _, n := range d.cl.Nodes {
		if _, excluded := n.Labels[excludeFromLBLabel]; excluded {
			continue
		}
		eligible++
		if !slices.Contains(ready, n.Name) {
			missing = append(missing, n.Name)
		}
	}
	if len(missing) == 0 {
		return
	}
	slices.Sort(missing)
	names := missing
	more := ""
	if len(names) > maxNamesInMessage {
		more = fmt.Sprintf(" and %d more", len(names)-maxNamesInMessage)
		names = names[:maxNamesInMessage]
	}
	hc := "its healthCheckNodePort"
	if d.svc.Spec.HealthCheckNodePort != 0 {
		hc = fmt.Sprintf("healthCheckNodePort %d", d.svc.Spec.HealthCheckNodePort)
	}
	d.notOnAll = true
	d.add(IDEndpointsNotOnAll, check.SeverityWarning,
		fmt.Sprintf("Make sure the load balancer health-checks %s (cloud controllers do; custom health-check annotations can break it; "+
			"MetalLB L2 announces from one node only), or run stund on every node (Helm chart: kind=DaemonSet).", hc),
		"With externalTrafficPolicy: Local only nodes with a ready stund endpoint take traffic; %d of %d nodes have none (%s%s): "+
			"traffic the load balancer sends there is dropped.%s", len(missing), eligible, strings.Join(names, ", "), more, d.droppedAt())
}

func (d *diagnosis) ports() {
	var udp, tcp bool
	for _, p := range d.svc.Spec.Ports {
		switch p.Protocol {
		case corev1.ProtocolUDP:
			udp = true
		case corev1.ProtocolTCP, "":
			tcp = true
		}
	}
	if udp && d.svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		d.add(IDSessionAffinityUDP, check.SeverityWarning,
			"Set sessionAffinity: None (Helm chart: service.sessionAffinity=None): STUN Binding is stateless and needs no affinity.",
			"Service %s has sessionAffinity: ClientIP with a UDP port: some providers refuse such load balancers, and with a rewritten "+
				"source every client shares one affinity.", d.ref)
	}
	if udp && tcp && d.svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		fix := "If one protocol gets no answer, split UDP and TCP into two Services (Helm chart: service.split=true)."
		var errs []string
		for _, in := range d.svc.Status.LoadBalancer.Ingress {
			for _, ps := range in.Ports {
				if ps.Error != nil {
					errs = append(errs, fmt.Sprintf("%d/%s: %s", ps.Port, ps.Protocol, *ps.Error))
				}
			}
		}
		if len(errs) > 0 {
			d.add(IDMixedProtocol, check.SeverityError, fix,
				"Service %s mixes UDP and TCP and the load balancer reports port errors: %s.", d.ref, strings.Join(errs, "; "))
		} else {
			d.add(IDMixedProtocol, check.SeverityInfo, fix,
				"Service %s mixes UDP and TCP on one load balancer: some providers refuse this or provision only one protocol.", d.ref)
		}
	}
}

// provider guesses the cloud from the Nodes' providerIDs and the
// Service's annotations.
func (d *diagnosis) provider() string {
	for _, n := range d.cl.Nodes {
		if scheme, _, ok := strings.Cut(n.Spec.ProviderID, "://"); ok {
			switch scheme {
			case "aws", "digitalocean", "hcloud", "linode", "azure", "oci":
				return scheme
			}
		}
		if strings.HasPrefix(n.Spec.ProviderID, "ocid1.") {
			return "oci"
		}
	}
	for k := range d.svc.Annotations {
		switch {
		case strings.HasPrefix(k, "service.beta.kubernetes.io/aws-load-balancer-"):
			return "aws"
		case strings.HasPrefix(k, "service.beta.kubernetes.io/do-loadbalancer-"):
			return "digitalocean"
		case strings.HasPrefix(k, "load-balancer.hetzner.cloud/"):
			return "hcloud"
		case strings.HasPrefix(k, "service.beta.kubernetes.io/linode-loadbalancer-"):
			return "linode"
		case strings.HasPrefix(k, "service.beta.kubernetes.io/azure-"):
			return "azure"
		case strings.HasPrefix(k, "oci.oraclecloud.com/"), strings.HasPrefix(k, "oci-network-load-balancer.oraclecloud.com/"):
			return "oci"
		}
	}

	return ""
}

func (d *diagnosis) hasProtocol(p corev1.Protocol) bool {
	for _, sp := range d.svc.Spec.Ports {
		if sp.Protocol == p || (p == corev1.ProtocolTCP && sp.Protocol == "") {
			return true
		}
	}

	return false
}

// providers adds what the load-balancer provider's annotations mean for
// the client's source address.
func (d *diagnosis) providers() {
	ann := d.svc.Annotations
	udp, tcp := d.hasProtocol(corev1.ProtocolUDP), d.hasProtocol(corev1.ProtocolTCP)
	on := func(k string) bool { return strings.EqualFold(ann[k], "true") }
	var proxyProtocol []string
	if v := ann[annAWSProxyProtocol]; v != "" {
		proxyProtocol = append(proxyProtocol, annAWSProxyProtocol+": "+v)
	}
	if on(annDOProxyProtocol) {
		proxyProtocol = append(proxyProtocol, annDOProxyProtocol+": true")
	}
	if on(annHetznerProxyProtocol) {
		proxyProtocol = append(proxyProtocol, annHetznerProxyProtocol+": true")
	}
	if on(annOCIPPv2) {
		proxyProtocol = append(proxyProtocol, annOCIPPv2+": true")
	}
	if v := ann[annLinodeProxyProtocol]; v == "v1" || v == "v2" {
		proxyProtocol = append(proxyProtocol, annLinodeProxyProtocol+": "+v)
	}
	if len(proxyProtocol) > 0 {
		sev := check.SeverityWarning
		switch {
		case d.tcpUnanswered:
			sev = check.SeverityError
		case d.tcpPreserved:
			sev = check.SeverityInfo
		}
		d.add(IDProxyProtocol, sev,
			"Make sure stund runs with --proxy-protocol and --proxy-trusted-cidr covering the load balancer's source addresses "+
				"(Helm chart: extraArgs); without them it refuses connections that start with a PROXY header.",
			"Service %s turns on PROXY protocol (%s): the load balancer sends the client's address in a header before the STUN traffic.",
			d.ref, strings.Join(proxyProtocol, "; "))
	}

	switch d.provider() {
	case "aws":
		attrs := ann[annAWSTargetGroupAttrs]
		preserveOn := strings.Contains(strings.ReplaceAll(attrs, " ", ""), "preserve_client_ip.enabled=true")
		preserveOff := strings.Contains(strings.ReplaceAll(attrs, " ", ""), "preserve_client_ip.enabled=false")
		fix := fmt.Sprintf("Annotate the Service with %s: preserve_client_ip.enabled=true.", annAWSTargetGroupAttrs)
		switch {
		case preserveOff && tcp:
			d.add(IDAWSPreserveClientOff, check.SeverityError, fix,
				"Service %s sets preserve_client_ip.enabled=false on its NLB target groups: TCP targets see the load balancer's "+
					"address (UDP target groups always keep the client's).", d.ref)
		case ann[annAWSTargetType] == "ip" && tcp && !preserveOn:
			d.add(IDAWSNLBIPTargetTCP, d.errorIf(d.tcpRewritten), fix,
				"Service %s uses NLB ip targets, for which TCP client IP preservation is off by default: TCP probes see the NLB's "+
					"private address (UDP keeps the client's).", d.ref)
		}
	case "digitalocean":
		if !on(annDOProxyProtocol) {
			d.add(IDDigitalOceanSourceIP, d.errorIf(d.rewritten),
				fmt.Sprintf("Annotate the Service with %s: \"true\" and %s (TCP); UDP has no way to carry the client's address through this load balancer.",
					annDOProxyProtocol, proxyFlags),
				"Service %s is behind a DigitalOcean load balancer, which does not preserve the client's source IP.", d.ref)
		}
	case "hcloud":
		if udp {
			d.add(IDHetznerNoUDP, check.SeverityError,
				"Expose only TCP through the Hetzner load balancer (Helm chart: service.protocols=[TCP]) and serve UDP some other way (hostNetwork on the nodes).",
				"Service %s has a UDP port, but Hetzner load balancers do not balance UDP.", d.ref)
		}
		if tcp && !on(annHetznerProxyProtocol) {
			d.add(IDHetznerTCPProxy, d.errorIf(d.rewritten),
				fmt.Sprintf("Annotate the Service with %s: \"true\" and %s.", annHetznerProxyProtocol, proxyFlags),
				"Service %s is behind a Hetzner load balancer, which proxies TCP: stund sees the load balancer's address.", d.ref)
		}
	case "oci":
		if strings.EqualFold(ann[annOCILBType], "nlb") && !on(annOCIPreserveSource) {
			d.add(IDOCIPreserveSourceOff, d.errorIf(d.rewritten),
				fmt.Sprintf("Annotate the Service with %s: \"true\" and set externalTrafficPolicy: Local (OCI never preserves the source with Cluster).", annOCIPreserveSource),
				"Service %s uses an OCI network load balancer without source preservation: stund sees the load balancer's address.", d.ref)
		}
	case "linode":
		if v := ann[annLinodeProxyProtocol]; tcp && v != "v1" && v != "v2" {
			d.add(IDLinodeTCPProxy, d.errorIf(d.rewritten),
				fmt.Sprintf("Annotate the Service with %s: v2 and %s.", annLinodeProxyProtocol, proxyFlags),
				"Service %s is behind a Linode NodeBalancer, which proxies TCP: stund sees the NodeBalancer's address.", d.ref)
		}
		if udp {
			d.add(IDLinodeUDPBeta, check.SeverityInfo, "Check that UDP NodeBalancers are available to your account and region.",
				"Service %s has a UDP port; UDP on Linode NodeBalancers is in beta.", d.ref)
		}
	case "azure":
		if on(annAzureFloatingIPOff) {
			d.add(IDAzureFloatingIPOff, check.SeverityInfo,
				fmt.Sprintf("Remove %s unless you need it; either way keep externalTrafficPolicy: Local, without which Azure SNATs to the node's address.", annAzureFloatingIPOff),
				"Service %s disables floating IP: packets reach the nodes addressed to the node's IP instead of the load balancer's.", d.ref)
		}
	}
}

// ptrs returns pointers to the elements of s.
func ptrs[T any](s []T) []*T {
	out := make([]*T, len(s))
	for i := range s {
		out[i] = &s[i]
	}

	return out
}
