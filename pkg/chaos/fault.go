// Package chaos is the lab's faults: each one is injected into a cluster for
// a cell and reverted after it, also after an error or an interrupt. The one
// fault today is the per-node agent (labagent): the race emulator, and the
// delay-aaaa mitigation, which is a mode of the same agent.
package chaos

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"

	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/scenario"
)

// Fault is something done to a cluster for the length of a cell.
type Fault interface {
	// Inject sets the fault up and returns once it is in force everywhere.
	Inject(ctx context.Context) error
	// Revert removes it and checks nothing of it is left; it runs after
	// Inject, whatever Inject returned.
	Revert(ctx context.Context) error
}

// Agent is labagent on every node of a cluster (as the runner sees it), as
// one cell needs it.
type Agent struct {
	c  *cluster.Cluster
	ds *appsv1.DaemonSet
}

var _ Fault = (*Agent)(nil)

// NewAgent returns the agent a cell needs on c (NeedsAgent must be true),
// on c's nodes only: c may be the nodes of one lane of a cluster (cells side
// by side), or an existing cluster's probed nodes.
func NewAgent(c *cluster.Cluster, cell scenario.Cell, o AgentOptions) (*Agent, error) {
	if a := c.Adopted; a != nil {
		// An existing cluster: the image comes from its nodes or the
		// user's registry.
		o.PullPolicy = a.PullPolicy
	}
	o.Nodes = nil
	for _, n := range c.Nodes {
		o.Nodes = append(o.Nodes, n.Name)
	}
	ds, err := AgentDaemonSet(cell, o)
	if err != nil {
		return nil, err
	}
	return &Agent{c: c, ds: ds}, nil
}

// Spec is what the agent runs, as a string: two agents of equal Spec are the
// same agent (image, arguments, nodes), whatever their namespace and labels,
// so that one left running by a cell can serve the next.
func (a *Agent) Spec() string {
	b, err := json.Marshal(a.ds.Spec.Template.Spec)
	if err != nil {
		return "unmarshalable: " + err.Error() // never equal to a real spec
	}
	return string(b)
}

// Inject creates the agent's DaemonSet and waits until every node's agent
// answers and has its rules in place.
func (a *Agent) Inject(ctx context.Context) error { return installAgent(ctx, a.c.Client, a.c, a.ds) }

// Revert deletes the DaemonSet and its pods, waits for every agent to have
// exited and checks that no node kept one of its rules.
func (a *Agent) Revert(ctx context.Context) error {
	if err := deleteAgent(ctx, a.c.Client, a.ds.Namespace); err != nil {
		return err
	}
	if err := checkAgentGone(ctx, a.c); err != nil {
		return fmt.Errorf("revert %s: %w", AgentName, err)
	}
	return nil
}
