package addons

import (
	"context"
	"errors"
)

// RandomFully adds --random-fully to the nodes' masquerade rules. Not written yet (issue 6).
func RandomFully(ctx context.Context, env Env) error {
	return errors.New("mitigation random-fully is not set up by the lab yet (issue 6)")
}

// ARPGC raises the nodes' neighbour table thresholds. Not written yet (issue 6).
func ARPGC(ctx context.Context, env Env) error {
	return errors.New("mitigation arp-gc is not set up by the lab yet (issue 6)")
}
