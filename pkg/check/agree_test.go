package check

import (
	"net/netip"
	"testing"

	"github.com/stund/stund/internal/netclass"
	"github.com/stund/stund/internal/stund/server"
)

// TestClassesAgreeWithStund checks that stuncheck and stund judge every
// block of the IANA special-purpose registries alike: what stuncheck calls
// public, stund counts as a client, and the reverse. They disagreed on
// 255.255.255.255 (stund: client) and 198.18.0.0/15 (both: public).
func TestClassesAgreeWithStund(t *testing.T) {
	for _, r := range netclass.Ranges() {
		for _, a := range []netip.Addr{r.Prefix.Addr(), lastAddr(r.Prefix)} {
			public := classify(a) == classPublic
			if nonPublic := (server.StaticClassifier{}).Classify(a) == server.ClassPrivate; public == nonPublic {
				t.Errorf("%s (%s, %s): stuncheck says %s, stund says non-public %v", a, r.Prefix, r.Name, classify(a), nonPublic)
			}
		}
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)

	return a
}
