package config

import (
	"errors"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// The real behaviors and protocols live in other packages; these fakes,
// named so that they can never clash with them, give the tests every kind
// of option to check.
func init() {
	zero := 0.0
	newBehavior := func(chaos.Values) (chaos.Behavior, error) { return nil, nil }
	newProtocol := func(chaos.Values) (chaos.Protocol, error) { return nil, nil }
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "test_delay",
		Doc:  "Waits before the exchange.",
		Options: chaos.Options{
			{Name: "sleep", Kind: chaos.Duration, Default: time.Second, Doc: "How long to wait.", Min: &zero},
			{Name: "before", Kind: chaos.Bool, Default: true, Doc: "Wait before the request rather than after."},
		},
		New: newBehavior,
	})
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "test_error",
		Doc:  "Answers with an error.",
		Options: chaos.Options{
			{Name: "inject", Kind: chaos.Bool, Default: false, Doc: "Inject garbage into the real answer."},
			{Name: "warmup", Kind: chaos.Int, Default: int64(0), Doc: "Calls let through first.", Min: &zero},
			{Name: "mode", Kind: chaos.String, Default: "page", Doc: "What to send.", Choices: []string{"page", "bytes"}},
		},
		New: newBehavior,
	})
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "test_lists",
		Doc:  "Takes lists and numbers.",
		Options: chaos.Options{
			{Name: "hosts", Kind: chaos.Strings, Default: []string(nil), Doc: "Hosts."},
			{Name: "codes", Kind: chaos.Ints, Default: []int64{500}, Doc: "Status codes."},
			{Name: "ratio", Kind: chaos.Float, Default: 0.5, Doc: "A ratio."},
			{Name: "label", Kind: chaos.String, Default: "", Doc: "Free text."},
		},
		// Its constructor refuses a label, as real behaviors refuse what
		// their declarations cannot say.
		New: func(v chaos.Values) (chaos.Behavior, error) {
			if v.String("label") == "refused" {
				return nil, errors.New(`option "label": "refused" is refused`)
			}
			return nil, nil
		},
	})
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "test_abort",
		Doc:  "Takes no options.",
		New:  newBehavior,
	})
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "test_proto",
		Doc:  "A protocol with options.",
		Options: chaos.Options{
			{Name: "buffer", Kind: chaos.Int, Default: int64(8124), Doc: "Read buffer size.", Min: &zero},
			{Name: "keep_alive", Kind: chaos.Bool, Default: false, Doc: "Keep backend connections."},
		},
		New: func(v chaos.Values) (chaos.Protocol, error) {
			if v.Int("buffer") == 13 {
				return nil, errors.New(`option "buffer": 13 is unlucky`)
			}
			return nil, nil
		},
	})
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "test_plain",
		Doc:  "A protocol without options.",
		New:  newProtocol,
	})
}
