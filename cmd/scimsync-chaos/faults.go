package main

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"
)

// Fault kinds.
const (
	FaultKillWorker    = "kill-worker"
	FaultKillAPI       = "kill-api"
	FaultRedisRestart  = "redis-restart"
	FaultRedisFlushAll = "redis-flushall"
	FaultPGTerminate   = "postgres-terminate"
	FaultIdP429        = "idp-429"
	FaultIdP500        = "idp-500"
	FaultSMTP          = "smtp-fail"
)

// faultEvery is how often each kind strikes, on average.
var faultEvery = []struct {
	kind  string
	every time.Duration
}{
	{FaultKillWorker, 40 * time.Second},
	{FaultKillAPI, 40 * time.Second},
	{FaultRedisRestart, 90 * time.Second},
	{FaultRedisFlushAll, 90 * time.Second},
	{FaultPGTerminate, 45 * time.Second},
	{FaultIdP429, 30 * time.Second},
	{FaultIdP500, 30 * time.Second},
	{FaultSMTP, 30 * time.Second},
}

// PlannedFault is one fault at an offset from the start of the chaos.
type PlannedFault struct {
	At   time.Duration
	Kind string
}

// PlanFaults lays out the faults of a run of length d from rng: every kind
// at least once, more in longer runs, between 5% and 85% of the run so
// that the last ones have time to bite before healing. The same seed and
// length give the same plan.
func PlanFaults(rng *rand.Rand, d time.Duration) []PlannedFault {
	var out []PlannedFault
	lo, hi := d/20, d*85/100
	for _, k := range faultEvery {
		n := max(1, int(d/k.every))
		for range n {
			out = append(out, PlannedFault{At: lo + time.Duration(rng.Int64N(int64(hi-lo))), Kind: k.kind})
		}
	}
	slices.SortStableFunc(out, func(a, b PlannedFault) int { return cmp.Compare(a.At, b.At) })
	return out
}
