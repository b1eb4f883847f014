package check

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
)

// discover asks every reference, over UDP, what address it sees for family
// f, and takes the IP that a strict majority of the answering references
// agree on. No answer or no majority leaves the IP unknown: a guess would
// make the verdict wrong.
func (c *Checker) discover(ctx context.Context, f Family) PublicIP {
	out := PublicIP{Family: f, Source: SourceReference, References: make([]ReferenceAnswer, len(c.cfg.References))}
	var wg sync.WaitGroup
	for i, ref := range c.cfg.References {
		wg.Go(func() { out.References[i] = c.askReference(ctx, ref, f) })
	}
	wg.Wait()

	counts := map[netip.Addr]int{}
	answered := 0
	for _, r := range out.References {
		if r.Mapped.IsValid() {
			answered++
			counts[r.Mapped.Addr()]++
		}
	}
	switch {
	case len(out.References) == 0:
		out.Detail = fmt.Sprintf("unknown: no --reference servers and no %s --expect-ip", familyName(f))
	case answered == 0:
		out.Detail = fmt.Sprintf("unknown: none of the %d reference servers answered over %s", len(out.References), familyName(f))
	default:
		ips := make([]netip.Addr, 0, len(counts))
		for ip := range counts {
			ips = append(ips, ip)
		}
		sort.Slice(ips, func(i, j int) bool {
			return counts[ips[i]] > counts[ips[j]] || counts[ips[i]] == counts[ips[j]] && ips[i].Less(ips[j])
		})
		if best := ips[0]; 2*counts[best] > answered {
			out.IP = best
			out.Detail = fmt.Sprintf("%d of %d answering reference servers agree", counts[best], answered)
		} else {
			parts := make([]string, len(ips))
			for i, ip := range ips {
				parts[i] = fmt.Sprintf("%s (%d)", ip, counts[ip])
			}
			out.Detail = "unknown: the reference servers disagree: " + strings.Join(parts, ", ")
		}
	}

	return out
}

func (c *Checker) askReference(ctx context.Context, ref string, f Family) ReferenceAnswer {
	ans := ReferenceAnswer{Server: ref}
	t, err := ParseTarget(ref)
	if err != nil {
		ans.Error = err.Error()

		return ans
	}
	addrs, err := c.resolve(ctx, t)
	if err != nil {
		ans.Error = "resolve: " + err.Error()

		return ans
	}
	for _, a := range addrs {
		if familyOf(a.Addr()) == f {
			ans.Address = a
		}
	}
	if !ans.Address.IsValid() {
		ans.Error = "no " + familyName(f) + " address"

		return ans
	}
	res, err := c.client.Binding(ctx, "udp", ans.Address)
	if err != nil {
		ans.Error = unwrapAll(err).Error()
		c.log.Debugf("reference %s: %v", ref, err)

		return ans
	}
	ans.Mapped = res.Mapped

	return ans
}
