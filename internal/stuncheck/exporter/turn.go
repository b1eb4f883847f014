package exporter

import "github.com/stund/stund/pkg/check"

// relayOf returns the TURN relay result of p, or nil for a probe without
// one. check.Probe carries no TURN result yet: every probe is a STUN
// Binding, so there is none, and stuncheck_probe_relay_works stays absent.
func relayOf(check.Probe) *relayResult { return nil }

// turnConfig gives the module's TURN credentials to the check. The check
// engine takes none yet; a module with credentials still probes only its
// listed targets (see Exporter.probe).
func turnConfig(*check.Config, *Module) {}
