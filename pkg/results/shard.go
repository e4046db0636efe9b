package results

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// Shard says that a run is one part of a sharded scenario (labrun run
// --shard i/N): which part, and the cells the plan gave it. labrun merge
// joins the parts and names the cells a missing or failed part owes.
type Shard struct {
	Index int      `json:"index"` // 1-based
	Count int      `json:"count"`
	Cells []string `json:"cells"` // the cell ids this shard was planned to run
}

// String is the shard as the --shard flag takes it: i/N.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// ShardPath is shard.json: present only in a shard's run.
func (r RunDir) ShardPath() string { return filepath.Join(r.Dir, "shard.json") }

// WriteShard records that the run is a shard.
func (r RunDir) WriteShard(s Shard) error {
	if s.Count < 1 || s.Index < 1 || s.Index > s.Count {
		return fmt.Errorf("shard %s: want 1 ≤ i ≤ N", s)
	}
	return WriteJSON(r.ShardPath(), s)
}

// ReadShard reads shard.json; ok is false for a run that is not a shard.
func (r RunDir) ReadShard() (s Shard, ok bool, err error) {
	err = ReadJSON(r.ShardPath(), &s)
	if errors.Is(err, fs.ErrNotExist) {
		return Shard{}, false, nil
	}
	return s, err == nil, err
}
