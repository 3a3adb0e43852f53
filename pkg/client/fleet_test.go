package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestResolveAddrs(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "vaurien-admin.ns.svc":
			return []string{"10.0.0.3", "10.0.0.1", "fd00::2"}, nil
		case "empty.ns.svc":
			return nil, nil
		}
		return nil, errors.New("no such host")
	}
	tests := []struct {
		specs   []string
		want    []string
		wantErr string
	}{
		{[]string{"127.0.0.1:8080"}, []string{"127.0.0.1:8080"}, ""},
		{[]string{"b:1,a:1", "c:1"}, []string{"a:1", "b:1", "c:1"}, ""},
		{[]string{" a:1 , ,a:1", "http://x:2"}, []string{"a:1", "http://x:2"}, ""},
		{[]string{"dns:vaurien-admin.ns.svc:8080"}, []string{"10.0.0.1:8080", "10.0.0.3:8080", "[fd00::2]:8080"}, ""},
		{[]string{"dns:vaurien-admin.ns.svc:8080,10.0.0.1:8080"}, []string{"10.0.0.1:8080", "10.0.0.3:8080", "[fd00::2]:8080"}, ""},
		{[]string{"dns:vaurien-admin.ns.svc"}, nil, "want dns:NAME:PORT"},
		{[]string{"dns::8080"}, nil, "want dns:NAME:PORT"},
		{[]string{"dns:nowhere.ns.svc:8080"}, nil, "no such host"},
		{[]string{"dns:empty.ns.svc:8080"}, nil, "resolves to no address"},
		{[]string{"", " , "}, nil, "no admin address given"},
	}
	for _, tt := range tests {
		got, err := ResolveAddrs(t.Context(), tt.specs, lookup)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ResolveAddrs(%q) = %v, %v; want an error with %q", tt.specs, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ResolveAddrs(%q) = %v, %v; want %v", tt.specs, got, err, tt.want)
		}
	}
}
