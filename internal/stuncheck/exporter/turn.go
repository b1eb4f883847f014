package exporter

import "github.com/stund/stund/pkg/check"

// relayOf returns the TURN relay result of p, or nil for a STUN probe.
// A relay that was not tested (no allocation) counts as not working: the
// deployment cannot relay.
func relayOf(p check.Probe) *relayResult {
	if p.TURN == nil {
		return nil
	}

	return &relayResult{Transport: vocab(string(p.Transport), transports), Works: p.TURN.Relay.Status == check.RelayWorks}
}

// turnConfig gives the module's TURN credentials to the check. Only a
// module with credentials has them, and such a module probes only its
// listed targets (see Exporter.probe).
func turnConfig(cfg *check.Config, m *Module) {
	if m == nil || m.TURN == nil {
		return
	}
	if m.TURN.REST {
		cfg.TURN = check.TURNConfig{Username: m.TURN.Username, Secret: m.TURN.Password.Reveal()}
		return
	}
	cfg.TURN = check.TURNConfig{Username: m.TURN.Username, Password: m.TURN.Password.Reveal()}
}
