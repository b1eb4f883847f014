//go:build e2e

package e2e

import (
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
)

// checkPageURL is the exporter's /check with query: the exporter runs in
// the client namespace, where Chromium runs.
func checkPageURL(q url.Values) string {
	return "http://" + exporterAddr + "/check?" + q.Encode()
}

// wantPage checks the page's verdict, and for target its verdict, reason
// and the IP the server saw (reason or IP empty: not checked).
func wantPage(t *testing.T, res pageResult, verdict, target, targetVerdict, reason, mappedIP string) {
	t.Helper()
	if res.Verdict != verdict {
		t.Errorf("page verdict %q, want %q", res.Verdict, verdict)
	}
	pt, ok := res.Targets[target]
	if !ok {
		t.Fatalf("the page logged nothing for %s: %+v", target, res.Targets)
	}
	if pt.Verdict != targetVerdict || (reason != "" && pt.Reason != reason) {
		t.Errorf("%s: %s (%s), want %s (%s)", target, pt.Verdict, pt.Reason, targetVerdict, reason)
	}
	if mappedIP != "" {
		ap, err := netip.ParseAddrPort(pt.Mapped)
		if err != nil || ap.Addr().String() != mappedIP {
			t.Errorf("%s: mapped %q, want %s:PORT", target, pt.Mapped, mappedIP)
		}
	}
}

// TestWebPagePassthrough: through the passthrough load balancer the
// server sees the client's public IP.
func TestWebPagePassthrough(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	top.StartStund(t)
	top.startExporter(t)
	target := "stun:" + hostPort(ipv4.VIP, stunPort)
	res := runCheckPage(t, top.Client, checkPageURL(url.Values{"target": {target}, "expect_ip": {ipv4.Public}}))
	wantPage(t, res, "preserved", target, "preserved", "same-address", ipv4.Public)

	// Without expect_ip and references there is nothing to compare with.
	res = runCheckPage(t, top.Client, checkPageURL(url.Values{"target": {target}}))
	wantPage(t, res, "inconclusive", target, "inconclusive", "no-public-ip", ipv4.Public)
}

// TestWebPageCloudSNAT: the load balancer SNATs to its inside address,
// which the page shows as what the server saw.
func TestWebPageCloudSNAT(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: CloudSNAT})
	top.StartStund(t)
	top.startExporter(t)
	target := "stun:" + hostPort(ipv4.VIP, stunPort)
	res := runCheckPage(t, top.Client, checkPageURL(url.Values{"target": {target}, "expect_ip": {ipv4.Public}}))
	wantPage(t, res, "rewritten", target, "rewritten", "private-address", ipv4.LBInside)
}

// TestWebPageHomeNAT: behind the home NAT, with no expect_ip, the public
// IP comes from the reference server outside the load balancer.
func TestWebPageHomeNAT(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough, HomeNAT: true})
	top.StartStund(t)
	StartCoturn(t, top.Reference, []string{ipv4.Reference, ipv6.Reference}, "--no-rfc5780")
	top.startExporter(t)
	target := "stun:" + hostPort(ipv4.VIP, stunPort)
	res := runCheckPage(t, top.Client, checkPageURL(url.Values{
		"target": {target}, "reference": {"stun:" + hostPort(ipv4.Reference, stunPort)},
	}))
	wantPage(t, res, "preserved", target, "preserved", "", ipv4.Public)
}

// TestWebPageTURNWrongPassword: coturn in the pod rejects the password
// typed into the form (here through the URL fragment, which the page reads
// for tests and never sends): the page shows the 401 and says rewritten,
// since the relay is unusable.
func TestWebPageTURNWrongPassword(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	top.startTURN(t, false, "--external-ip", ipv4.VIP+"/"+ipv4.Pod)
	top.startExporter(t)
	target := "turn:" + hostPort(ipv4.VIP, stunPort)
	page := checkPageURL(url.Values{"target": {target}, "expect_ip": {ipv4.Public}}) +
		"#" + url.Values{"turn_username": {turnUser}, "turn_credential": {"wrong-" + turnPassword}}.Encode()
	res := runCheckPage(t, top.Client, page)
	wantPage(t, res, "rewritten", target+"?transport=udp", "failed", "credentials-rejected", "")
	if pt := res.Targets[target+"?transport=udp"]; !slices.Contains(pt.Errors, "401") {
		t.Errorf("the page shows the errors %v, want 401", pt.Errors)
	}
}

// TestWebPageTURN: with the right password and a server that knows its
// public address, the relay candidate is the VIP and the verdict holds.
func TestWebPageTURN(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	top.forwardRelayPorts(ipv4)
	top.startTURN(t, false, "--external-ip", ipv4.VIP+"/"+ipv4.Pod)
	top.startExporter(t)
	target := "turn:" + hostPort(ipv4.VIP, stunPort) + "?transport=udp"
	page := checkPageURL(url.Values{"target": {target}, "expect_ip": {ipv4.Public}}) +
		"#" + url.Values{"turn_username": {turnUser}, "turn_credential": {turnPassword}}.Encode()
	res := runCheckPage(t, top.Client, page)
	wantPage(t, res, "preserved", target, "preserved", "same-address", ipv4.Public)
	pt := res.Targets[target]
	if len(pt.Errors) > 0 {
		t.Errorf("gathering errors %v", pt.Errors)
	}
	if ap, err := netip.ParseAddrPort(pt.Relay); err != nil || ap.Addr().String() != ipv4.VIP {
		t.Errorf("relay candidate %q, want %s:PORT", pt.Relay, ipv4.VIP)
	}
}

// TestWebPageFile: the page stuncheck web writes works from file://, with
// nothing served.
func TestWebPageFile(t *testing.T) {
	top := NewTopology(t, TopologyOptions{Mode: Passthrough})
	top.StartStund(t)
	file := filepath.Join(t.TempDir(), "check.html")
	if out, err := top.Client.Command(t.Context(), binPath(t, "stuncheck"), "web", "--out", file).CombinedOutput(); err != nil {
		t.Fatalf("stuncheck web: %v\n%s", err, out)
	}
	target := "stun:" + hostPort(ipv4.VIP, stunPort)
	res := runCheckPage(t, top.Client, "file://"+file+"?"+url.Values{"target": {target}, "expect_ip": {ipv4.Public}}.Encode())
	wantPage(t, res, "preserved", target, "preserved", "same-address", ipv4.Public)
}
