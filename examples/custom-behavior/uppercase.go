package main

import (
	"context"
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// init registers the custom behavior. This one call is all a plugin needs:
// from then on config files, the CLI listing and the docs know "uppercase"
// and its options, exactly like a built-in behavior.
func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "uppercase",
		Doc: "Upper-cases the ASCII letters flowing in the chosen direction and leaves " +
			"every other byte alone, so a client that expects exact bytes notices at once. " +
			"On a tcp route the whole connection is changed.",
		Options: chaos.Options{
			{Name: "direction", Kind: chaos.String, Default: "to_client", Choices: chaos.DirectionChoices,
				Doc: "which data is changed: to_client (the answers), to_backend (the requests) or both"},
		},
		Example: "behavior \"uppercase\" {\n  percent   = 50\n  direction = \"to_client\"\n}",
		New: func(v chaos.Values) (chaos.Behavior, error) {
			d, err := chaos.ParseDirection(v.String("direction"))
			if err != nil {
				return nil, err
			}
			return uppercase{dir: d}, nil
		},
	})
}

// uppercase is the configured behavior. It describes its effect and leaves
// the relaying to the engine, which runs the filter on the chosen
// directions of each connection that draws it.
type uppercase struct{ dir chaos.Direction }

func (u uppercase) Effect(*chaos.Unit) chaos.Effect {
	var e chaos.Effect
	// The filter keeps no state, so one value serves every connection.
	e.SetFilter(u.dir, upperFilter{})
	return e
}

// upperFilter relays one direction with the ASCII letters upper-cased.
type upperFilter struct{}

func (upperFilter) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			for i, c := range b {
				if 'a' <= c && c <= 'z' {
					b[i] = c - 'a' + 'A'
				}
			}
			if _, werr := dst.Write(b); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
