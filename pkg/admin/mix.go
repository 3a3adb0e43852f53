package admin

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// mixEntry is api.Behavior as read: a pointer tells a missing percent from 0.
type mixEntry struct {
	Name    string          `json:"name"`
	Percent *float64        `json:"percent"`
	Options map[string]any  `json:"options"`
	Match   chaos.MatchSpec `json:"match"`
}

// buildMix checks entries against the registry with the declarations the
// HCL file is checked with, and the error codes they name against protocol,
// the route's, and builds the mix. Errors are 400s.
func buildMix(entries []mixEntry, protocol string) (*chaos.Mix, error) {
	out := make([]chaos.Entry, 0, len(entries))
	for i, e := range entries {
		if e.Name == "" {
			return nil, badRequest(fmt.Sprintf(`behavior %d of the list: the "name" key is required`, i+1))
		}
		if e.Percent == nil {
			return nil, onField(fmt.Sprintf("behaviors[%d].percent", i), badRequest(fmt.Sprintf(`behavior %q: the "percent" key is required: its share of the draws, from 0 to 100`, e.Name)))
		}
		if err := checkOptions(i, e, protocol); err != nil {
			return nil, err
		}
		// Adding 0 turns -0 into 0, which is what it means.
		entry, err := chaos.NewEntry(e.Name, *e.Percent+0, e.Options, e.Match)
		if err != nil {
			return nil, badRequest(err.Error())
		}
		out = append(out, entry)
	}
	m, err := chaos.NewMix(out)
	if err != nil {
		return nil, badRequest(err.Error())
	}
	return m, nil
}

// MixChange is a change of a route's live mix.
type MixChange struct {
	Mix *chaos.Mix
	// For, when positive, is how long the change lasts; Then comes in
	// force after it.
	For time.Duration
	// Seed, when not 0, restarts the route's draws from it, so that the
	// same requests meet the same behaviors each time.
	Seed uint64
	// Then is what follows a timed change; nil brings back the mix in
	// force before it, for good.
	Then *MixChange
}

// View renders the change as the API shows it, and as PUT
// /routes/{name}/mix takes it.
func (c MixChange) View() *api.SetMix {
	v := &api.SetMix{Behaviors: mixView(c.Mix), Duration: api.Duration(c.For), Seed: c.Seed}
	if c.Then != nil {
		v.Then = c.Then.View()
	}
	return v
}

// checkOptions checks each option of entry i on its own, so that an error
// names the field at fault ("behaviors[0].options.sleep") for a form to
// show next to it; the message is the one the whole entry's check gives.
func checkOptions(i int, e mixEntry, protocol string) error {
	spec, ok := chaos.LookupBehavior(e.Name)
	if !ok {
		return onField(fmt.Sprintf("behaviors[%d].name", i), &chaos.UnknownError{What: "behavior", Name: e.Name, Valid: chaos.BehaviorNames()})
	}
	if p := *e.Percent; p != p || p < 0 || p > 100 {
		return onField(fmt.Sprintf("behaviors[%d].percent", i), badRequest(fmt.Sprintf("behavior %q: percent %v is outside 0..100", e.Name, p)))
	}
	for _, k := range slices.Sorted(maps.Keys(e.Options)) {
		if _, err := spec.Options.Resolve(e.Name, map[string]any{k: e.Options[k]}); err != nil {
			return onField(fmt.Sprintf("behaviors[%d].options.%s", i, k), err)
		}
	}
	return checkErrorCode(e.Name, protocol, spec.Options, e.Options, fmt.Sprintf("behaviors[%d].options.%s", i, chaos.ErrorCodeOption))
}

// checkErrorCode checks the error code that the options of behavior name,
// each valid on its own, set for a route of protocol; an error is about
// field.
func checkErrorCode(name, protocol string, decl chaos.Options, opts map[string]any, field string) error {
	v, err := decl.Resolve(name, opts)
	if err != nil {
		return nil // reported by the check of each option, or of the entry
	}
	if err := chaos.CheckErrorCode(protocol, v); err != nil {
		return onField(field, fmt.Errorf("%s: %w", name, err))
	}
	return nil
}

// mixView renders a mix as the API shows it; the result, sent back in a
// PUT /routes/{name}/mix, builds the same mix.
func mixView(m *chaos.Mix) []api.Behavior { return api.FromMix(m) }
