package check

import (
	"cmp"
	"slices"
)

// Severity says how much a Finding matters.
type Severity string

// Severities, most severe first.
const (
	// SeverityError is a cause of a rewritten source, or of traffic that
	// is dropped.
	SeverityError Severity = "error"
	// SeverityWarning is a setting that rewrites sources or drops traffic
	// in some conditions.
	SeverityWarning Severity = "warning"
	// SeverityInfo is worth knowing but needs no change on its own.
	SeverityInfo Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case SeverityError:
		return 0
	case SeverityWarning:
		return 1
	default:
		return 2
	}
}

// A Finding is one thing a diagnosis found about the path, with what to
// change. Its ID is stable (scripts match on it); Message and Fix are for
// people.
type Finding struct {
	ID       string
	Severity Severity
	// Message says what was found, naming the objects involved.
	Message string
	// Fix says what to change.
	Fix string
}

// SortFindings orders findings most severe first, then by ID; findings
// of equal severity and ID keep their order.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if c := cmp.Compare(a.Severity.rank(), b.Severity.rank()); c != 0 {
			return c
		}

		return cmp.Compare(a.ID, b.ID)
	})
}
