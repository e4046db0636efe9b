package raceemu

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// agentModes are the ways a benchmark runs: without the agent, through its
// queue (emulate at p = 0: profile 5.0-5.5 with one replica never drops), and
// with its passive NFLOG observer (count-only).
var agentModes = []struct {
	name string
	args []string
}{
	{"no-agent", nil},
	{"queue", []string{"--mode", "emulate", "--profile", "5.0-5.5", "--replicas", "1"}},
	{"nflog", []string{"--mode", "count-only", "--profile", "pre-5.0"}},
}

// BenchmarkIntegrationLatency measures the round trip of one DNS query whose
// first packet opens a connection (a fresh socket each time), without the
// agent and through it. The added latency per packet is the difference of
// the p50s.
//
//	go test -run '^$' -bench IntegrationLatency -benchtime 3000x ./pkg/raceemu/
func BenchmarkIntegrationLatency(b *testing.B) {
	for _, m := range agentModes {
		b.Run(m.name, func(b *testing.B) {
			requireIntegration(b)
			ns := newNetns(b)
			respond(b, ns, 0)
			if m.args != nil {
				startAgent(b, ns, m.args...)
			}
			rtts := make([]time.Duration, 0, b.N)
			buf := make([]byte, 512)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				c := udpSocket(b, ns)
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				q := dnsQuery(uint16(i), TypeA)
				b.StartTimer()
				start := time.Now()
				if _, err := c.Write(q); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Read(buf); err != nil {
					b.Fatalf("query %d: %v", i, err)
				}
				rtts = append(rtts, time.Since(start))
				b.StopTimer()
				c.Close()
				b.StartTimer()
			}
			b.StopTimer()
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(rtts[len(rtts)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkIntegrationThroughput sends b.N unanswered queries from 64
// sockets as fast as one goroutine can, to a sink that never answers (so
// every packet is conntrack NEW and goes through the queue), and reports
// what the agent handled per second, what reached the sink, and the agent's
// CPU. Without the agent, only the delivered rate is reported.
//
//	go test -run '^$' -bench IntegrationThroughput -benchtime 200000x ./pkg/raceemu/
func BenchmarkIntegrationThroughput(b *testing.B) {
	for _, m := range agentModes {
		b.Run(m.name, func(b *testing.B) {
			requireIntegration(b)
			ns := newNetns(b)
			var received atomic.Int64
			var lastAt atomic.Int64
			var pc net.PacketConn
			if err := inNetns(b, ns, func() (err error) {
				pc, err = net.ListenPacket("udp4", testVIP+":53")
				return err
			}); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := pc.ReadFrom(buf); err != nil {
						return
					}
					received.Add(1)
					lastAt.Store(time.Now().UnixNano())
				}
			}()
			var a *runningAgent
			if m.args != nil {
				a = startAgent(b, ns, m.args...)
			}
			socks := make([]*net.UDPConn, 64)
			for i := range socks {
				socks[i] = udpSocket(b, ns)
			}
			var seen0, cpu0 uint64
			if a != nil {
				seen0 = a.counters(b).Seen
				cpu0 = cpuTicks(b, a.cmd.Process.Pid)
			}
			q := dnsQuery(1, TypeA)
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				// A full socket buffer (EAGAIN) is not an error here: the rate is what got through.
				_, _ = socks[i%len(socks)].Write(q)
			}
			sent := time.Since(start)
			// Drain: wait until nothing arrived for 200 ms.
			for time.Since(time.Unix(0, lastAt.Load())) < 200*time.Millisecond {
				time.Sleep(50 * time.Millisecond)
			}
			b.StopTimer()
			elapsed := time.Unix(0, lastAt.Load()).Sub(start).Seconds()
			b.ReportMetric(float64(b.N)/sent.Seconds(), "offered-pkts/s")
			b.ReportMetric(float64(received.Load())/elapsed, "delivered-pkts/s")
			b.ReportMetric(float64(received.Load())/float64(b.N)*100, "delivered-%")
			if a != nil {
				s := a.counters(b)
				cpu := float64(cpuTicks(b, a.cmd.Process.Pid)-cpu0) / 100 // USER_HZ
				b.ReportMetric(float64(s.Seen-seen0)/elapsed, "agent-pkts/s")
				b.ReportMetric(cpu/elapsed*100, "agent-cpu-%")
				b.ReportMetric(float64(s.Overruns), "overruns")
			}
		})
	}
}

// cpuTicks is a process's user + system CPU time in clock ticks.
func cpuTicks(t testing.TB, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return utime + stime
}
