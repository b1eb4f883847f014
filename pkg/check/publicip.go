package check

import "context"

// DiscoverPublicIP asks cfg.References over UDP for the client's public
// IP of family f, as Run does for a family that cfg.ExpectIPs does not
// give: the IP a strict majority of the answering references report, or
// an invalid IP with the reason in Detail. cfg.Targets is not needed. A
// program that checks often (stuncheck's exporter) learns the IP once
// this way and passes it in ExpectIPs afterwards.
func DiscoverPublicIP(ctx context.Context, cfg Config, f Family) (PublicIP, error) {
	// New wants a target; none is probed here.
	cfg.Targets = []Target{{Input: "-", Host: "-"}}
	cfg.ExpectIPs = nil
	c, err := New(cfg)
	if err != nil {
		return PublicIP{}, err
	}

	return c.discover(ctx, f), nil
}
