package site

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
)

// History is one cell id across the runs that have it.
type History struct {
	Cell string `json:"cell"`
	// Page is the history page, relative to the site root.
	Page   string         `json:"page"`
	Points []HistoryPoint `json:"points"` // oldest first
}

// HistoryPoint is the cell in one run.
type HistoryPoint struct {
	Run      string    `json:"run"`
	Date     time.Time `json:"date,omitzero"`
	Scenario string    `json:"scenario"`
	RunPage  string    `json:"run_page"`
	CellResult
}

// MinHistoryRuns is how many runs must have a cell for it to get a history.
const MinHistoryRuns = 2

// Histories returns, sorted by cell id, the history of every cell id that
// at least MinHistoryRuns usable runs of idx have, in any state. A cell id is
// the same cell in two runs when the ids are equal, whatever the scenario:
// the id names shape, back end and mitigation, and the axes of more than one
// value (names, load, chaos, repeat); each point says its scenario.
func Histories(idx *Index) []History {
	byCell := map[string]*History{}
	runs := idx.Usable()
	for i := len(runs) - 1; i >= 0; i-- { // oldest first
		r := runs[i]
		for _, c := range r.Cells {
			h := byCell[c.ID]
			if h == nil {
				h = &History{Cell: c.ID, Page: cellPage(c.ID)}
				byCell[c.ID] = h
			}
			h.Points = append(h.Points, HistoryPoint{Run: r.Name, Date: r.Date, Scenario: r.Scenario, RunPage: r.Page, CellResult: c})
		}
	}
	var out []History
	for _, h := range byCell {
		if len(h.Points) >= MinHistoryRuns {
			out = append(out, *h)
		}
	}
	slices.SortFunc(out, func(a, b History) int { return strings.Compare(a.Cell, b.Cell) })
	return out
}

// cellPage is a cell's history page: cells/<id>.html, with any character
// that is not safe in a file name or URL replaced, and then a hash of the id
// added so two ids cannot share a page.
func cellPage(id string) string { return "cells/" + cellFileName(id) + ".html" }

func cellFileName(id string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, id)
	if safe == id && !strings.HasPrefix(id, ".") {
		return id
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%s-%08x", strings.TrimLeft(safe, "."), h.Sum32())
}
