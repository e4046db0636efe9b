package collect

// Captures on the DNS path: while a cell's probes run, tcpdump on each
// worker records the DNS traffic of the node's pods; afterwards the runner
// keeps each probe pod's packets (captures/<cell>/<pod>.pcap) and writes the
// analysis of all of them (captures/<cell>.json, the JSON of `labrun pcap
// --json`), which claims 8 and 9 read. docs/captures.md explains the
// choices.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"labrun.dev/labrun/pkg/analyze/capture"
	"labrun.dev/labrun/pkg/cluster"
	"labrun.dev/labrun/pkg/results"
	"labrun.dev/labrun/pkg/scenario"
	"labrun.dev/labrun/pkg/workload"
)

const (
	// CaptureRoot is where captures are written on a node (each in its own
	// directory, removed when the capture is collected).
	CaptureRoot = "/tmp/labrun-capture"
	// CaptureDedupWindow: a packet with the same client address, port and
	// DNS message as one kept less than this before is another copy of it
	// (tcpdump -i any sees a pod's packet on its veth and again on the
	// interface it is routed or bridged to), not a re-send (resolvers wait
	// a second or more before re-sending).
	CaptureDedupWindow = 100 * time.Millisecond
	// captureMargin is how long tcpdump may outlive the cell it captures
	// when nobody stops it (the runner killed): then `timeout` stops it.
	captureMargin = 10 * time.Minute
)

// CaptureNode is a node to capture on: pods of PodCIDR (all pods when
// empty) talking DNS.
type CaptureNode struct {
	Name    string
	PodCIDR string
}

// CaptureFilter is the capture filter for a node: DNS over UDP of the node's
// pods, both directions.
func CaptureFilter(podCIDR string) string {
	if podCIDR == "" {
		return "udp port 53"
	}
	return "udp port 53 and net " + podCIDR
}

// captureStart starts tcpdump in the background on a node, in its own
// session under `timeout` (so it ends even if nobody stops it), and returns
// once tcpdump listens. -i any sees every pod's interface, whichever the pod
// network (a veth per pod, or a bridge); --immediate-mode, or packets still
// in the capture ring are lost when tcpdump is stopped; -B 32768 (a 32 MiB
// ring; the default 2 MiB overflowed on a busy 2-core host); -Z root, or
// Debian's tcpdump drops to a user that cannot write the file.
const captureStart = `d=$1; limit=$2; shift 2
if [ -s "$d/pid" ]; then kill -KILL -- "-$(cat "$d/pid")" 2>/dev/null; fi
rm -rf "$d" && mkdir -p "$d" && cd "$d" || exit 1
setsid sh -c 'echo $$ > pid; exec timeout -s INT "$0" tcpdump -i any -n -U --immediate-mode -B 32768 -Z root -w cap.pcap "$@"' "$limit" "$@" </dev/null >/dev/null 2>err &
i=0
while [ $i -lt 100 ]; do
  if grep -q "listening on" err 2>/dev/null; then exit 0; fi
  if [ -s pid ] && ! kill -0 "$(cat pid)" 2>/dev/null; then echo "tcpdump exited:"; cat err; exit 1; fi
  sleep 0.1; i=$((i+1))
done
echo "tcpdump did not start listening within 10 s:"; cat err; exit 1
`

// captureStop stops tcpdump with SIGINT (it then writes out what it has and
// its counts), waits for it, prints its stderr, then pcapMark and the
// capture, and removes the capture from the node: one exec, not three.
const captureStop = `d=$1
[ -s "$d/pid" ] || { echo "no capture in $d"; rm -rf "$d"; exit 0; }
p=$(cat "$d/pid")
kill -INT "$p" 2>/dev/null
i=0
while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if kill -0 "$p" 2>/dev/null; then kill -KILL -- "-$p" 2>/dev/null; echo "tcpdump killed: it did not stop within 10 s of SIGINT"; fi
cat "$d/err"
printf '\n%s\n' "$2"
cat "$d/cap.pcap"; rc=$?
rm -rf "$d"
exit $rc
`

// pcapMark ends captureStop's text: the pcap's bytes follow it.
const pcapMark = "--- labrun: the pcap follows ---"

// Capture is tcpdump running on some nodes.
type Capture struct {
	c     *cluster.Cluster
	dir   string // on each node
	nodes []CaptureNode

	mu      sync.Mutex
	stopped bool
	stopErr error
	pcaps   map[string][]byte // node → pcap, once stopped
	stats   map[string]string // node → tcpdump's closing counts
	dropped uint64            // by the kernel, summed
}

// StartCapture starts a capture named id (a path component) on nodes and
// returns once tcpdump listens on every one of them; limit bounds how long
// it can run unstopped. On an error nothing is left running.
func StartCapture(ctx context.Context, c *cluster.Cluster, id string, nodes []CaptureNode, limit time.Duration) (*Capture, error) {
	if strings.ContainsAny(id, "/ ") || id == "" || id == "." || id == ".." {
		return nil, fmt.Errorf("capture id %q: want a plain name", id)
	}
	k := &Capture{c: c, dir: CaptureRoot + "/" + id, nodes: nodes}
	secs := strconv.Itoa(int(limit.Seconds()) + 1)
	err := cluster.EachNode(nodes, func(n CaptureNode) error {
		out, err := c.Exec(ctx, n.Name, "sh", "-c", captureStart, "sh", k.dir, secs, CaptureFilter(n.PodCIDR))
		if err != nil {
			return fmt.Errorf("start tcpdump on %s: %w: %s", n.Name, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	if err != nil {
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if stopErr := k.Stop(cleanup); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, fmt.Errorf("capture: %w", err)
	}
	return k, nil
}

var droppedByKernel = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// Stop stops tcpdump on every node, copies the captures into memory and
// removes them from the nodes. It is idempotent: later calls return the
// first one's error.
func (k *Capture) Stop(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return k.stopErr
	}
	k.stopped = true
	k.pcaps, k.stats = map[string][]byte{}, map[string]string{}
	var mu sync.Mutex
	k.stopErr = cluster.EachNode(k.nodes, func(n CaptureNode) error {
		out, err := k.c.Exec(ctx, n.Name, "sh", "-c", captureStop, "sh", k.dir, pcapMark)
		text, pcap, found := bytes.Cut(out, []byte("\n"+pcapMark+"\n"))
		stats := strings.TrimSpace(string(text))
		var errs []error
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("stop tcpdump on %s, copy and remove its capture: %w", n.Name, err))
			pcap = nil
		case !found && !strings.Contains(stats, "no capture in"):
			errs = append(errs, fmt.Errorf("copy the capture of %s: no pcap in what the node printed (%q)", n.Name, stats))
		}
		mu.Lock()
		defer mu.Unlock()
		if pcap != nil {
			k.pcaps[n.Name] = pcap
		}
		k.stats[n.Name] = stats
		if m := droppedByKernel.FindStringSubmatch(stats); m != nil {
			d, _ := strconv.ParseUint(m[1], 10, 64)
			k.dropped += d
		}
		return errors.Join(errs...)
	})
	return k.stopErr
}

// capturedPacket is one kept packet.
type capturedPacket struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// Write keeps the packets of pods (those with an address, on a node the
// capture ran on): one pcap per pod in dir, and the analysis of all of them
// in summaryPath. Stop must have been called.
func (k *Capture) Write(pods []results.CapturePod, dir, summaryPath string) (*results.CaptureSummary, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped {
		return nil, errors.New("capture: Write before Stop")
	}
	byNode := map[string]map[netip.Addr]int{}
	for i, p := range pods {
		if !p.IP.IsValid() {
			continue
		}
		if byNode[p.Node] == nil {
			byNode[p.Node] = map[netip.Addr]int{}
		}
		byNode[p.Node][p.IP] = i
	}
	kept := make([][]capturedPacket, len(pods))
	sum := &results.CaptureSummary{KernelDropped: k.dropped, Filters: map[string]string{}}
	var link layers.LinkType
	linkSet := false
	for _, n := range k.nodes {
		sum.Filters[n.Name] = CaptureFilter(n.PodCIDR)
		raw, ok := k.pcaps[n.Name]
		if !ok {
			continue
		}
		lt, perClient, copies, err := splitCapture(raw, byNode[n.Name], CaptureDedupWindow)
		if err != nil {
			return nil, fmt.Errorf("capture of %s: %w", n.Name, err)
		}
		sum.Copies += copies
		if len(perClient) == 0 {
			continue
		}
		if linkSet && lt != link {
			return nil, fmt.Errorf("capture of %s: link type %s, others %s", n.Name, lt, link)
		}
		link, linkSet = lt, true
		for i, pkts := range perClient {
			kept[i] = append(kept[i], pkts...)
		}
	}
	if !linkSet {
		link = layers.LinkTypeLinuxSLL2
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var all []capturedPacket
	for i, p := range pods {
		if !p.IP.IsValid() {
			continue
		}
		var buf bytes.Buffer
		if err := writePcap(&buf, link, kept[i]); err != nil {
			return nil, err
		}
		p.Packets, p.File = len(kept[i]), filepath.Join(filepath.Base(dir), p.Name+".pcap")
		if err := results.WriteFile(filepath.Join(dir, p.Name+".pcap"), buf.Bytes()); err != nil {
			return nil, err
		}
		sum.Pods = append(sum.Pods, p)
		all = append(all, kept[i]...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ci.Timestamp.Before(all[j].ci.Timestamp) })
	var merged bytes.Buffer
	if err := writePcap(&merged, link, all); err != nil {
		return nil, err
	}
	rep, err := capture.Analyze(&merged, capture.Options{})
	if err != nil {
		return nil, fmt.Errorf("analyse the capture: %w", err)
	}
	sum.CaptureReport = *rep
	if err := results.WriteJSON(summaryPath, sum); err != nil {
		return nil, err
	}
	return sum, nil
}

func writePcap(w *bytes.Buffer, lt layers.LinkType, pkts []capturedPacket) error {
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(262144, lt); err != nil {
		return err
	}
	for _, p := range pkts {
		if err := pw.WritePacket(p.ci, p.data); err != nil {
			return err
		}
	}
	return nil
}

type dedupKey struct {
	client netip.Addr
	port   uint16
	query  bool
	msg    string
}

// splitCapture reads a pcap and returns, for each client (index in
// clients), its DNS packets over UDP: queries it sent and answers it got,
// each once (copies less than window after the kept one are counted in
// copies, not kept).
func splitCapture(pcap []byte, clients map[netip.Addr]int, window time.Duration) (layers.LinkType, map[int][]capturedPacket, uint64, error) {
	r, err := pcapgo.NewReader(bytes.NewReader(pcap))
	if err != nil {
		return 0, nil, 0, fmt.Errorf("not a pcap: %w", err)
	}
	lt := r.LinkType()
	var first gopacket.LayerType
	switch lt {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	case layers.LinkTypeRaw, layers.LinkTypeIPv4:
		first = layers.LayerTypeIPv4
	case layers.LinkTypeIPv6:
		first = layers.LayerTypeIPv6
	default:
		return 0, nil, 0, fmt.Errorf("link type %s is not supported", lt)
	}
	var (
		eth   layers.Ethernet
		sll   layers.LinuxSLL
		sll2  layers.LinuxSLL2
		dot1q layers.Dot1Q
		ip4   layers.IPv4
		ip6   layers.IPv6
		udp   layers.UDP
	)
	parser := gopacket.NewDecodingLayerParser(first, &eth, &sll, &sll2, &dot1q, &ip4, &ip6, &udp)
	parser.IgnoreUnsupported = true
	var decoded []gopacket.LayerType
	out := map[int][]capturedPacket{}
	seen := map[dedupKey]time.Time{}
	var copies uint64
	var pruned time.Time
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break // a capture cut short keeps what it has
		}
		if err != nil {
			return 0, nil, 0, err
		}
		decoded = decoded[:0]
		_ = parser.DecodeLayers(data, &decoded)
		var src, dst netip.Addr
		isUDP := false
		for _, l := range decoded {
			switch l {
			case layers.LayerTypeIPv4:
				src, _ = netip.AddrFromSlice(ip4.SrcIP.To4())
				dst, _ = netip.AddrFromSlice(ip4.DstIP.To4())
			case layers.LayerTypeIPv6:
				src, _ = netip.AddrFromSlice(ip6.SrcIP)
				dst, _ = netip.AddrFromSlice(ip6.DstIP)
			case layers.LayerTypeUDP:
				isUDP = true
			}
		}
		if !isUDP || !src.IsValid() {
			continue
		}
		var k dedupKey
		switch {
		case udp.DstPort == 53:
			k = dedupKey{client: src, port: uint16(udp.SrcPort), query: true}
		case udp.SrcPort == 53:
			k = dedupKey{client: dst, port: uint16(udp.DstPort)}
		default:
			continue
		}
		i, ok := clients[k.client]
		if !ok {
			continue
		}
		k.msg = string(udp.Payload)
		if last, dup := seen[k]; dup && ci.Timestamp.Sub(last) < window {
			copies++
			continue
		}
		seen[k] = ci.Timestamp
		out[i] = append(out[i], capturedPacket{ci: ci, data: data})
		if ci.Timestamp.Sub(pruned) > 10*window {
			for key, at := range seen {
				if ci.Timestamp.Sub(at) >= window {
					delete(seen, key)
				}
			}
			pruned = ci.Timestamp
		}
	}
	return lt, out, copies, nil
}

// CellCapture is a cell's capture and the probe pods it has seen.
type CellCapture struct {
	*Capture
	run     results.RunDir
	cell    string
	ns      string
	cs      kubernetes.Interface
	mu      sync.Mutex
	pods    map[string]results.CapturePod // by pod name
	cancel  context.CancelFunc
	watched chan struct{}
}

// StartCellCapture starts a cell's capture on the workers (where its probes
// run) before any probe pod exists, and follows the namespace's probe pods
// to learn their addresses while they run. runID names the capture on the
// nodes.
func StartCellCapture(ctx context.Context, c *cluster.Cluster, run results.RunDir, cell scenario.Cell, ns string, workers []cluster.Node) (*CellCapture, error) {
	for _, p := range []string{run.CapturesDir(cell.ID), run.CaptureSummaryPath(cell.ID)} {
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("remove earlier capture of %s: %w", cell.ID, err)
		}
	}
	var nodes []CaptureNode
	for _, w := range workers {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("capture: node %s: %w", w.Name, err)
		}
		nodes = append(nodes, CaptureNode{Name: w.Name, PodCIDR: n.Spec.PodCIDR})
	}
	limit := time.Duration(cell.Load.Duration) + StartTimeout + LookupGrace + StopGrace + captureMargin
	k, err := StartCapture(ctx, c, run.Name()+"-"+workload.CellHash(cell.ID), nodes, limit)
	if err != nil {
		return nil, err
	}
	watch, cancel := context.WithCancel(ctx)
	cc := &CellCapture{Capture: k, run: run, cell: cell.ID, cs: c.Client, ns: ns, pods: map[string]results.CapturePod{}, cancel: cancel, watched: make(chan struct{})}
	go func() {
		defer close(cc.watched)
		for watch.Err() == nil {
			cc.notePods(watch)
			select {
			case <-watch.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return cc, nil
}

// notePods records the addresses of the namespace's probe pods.
func (cc *CellCapture) notePods(ctx context.Context) error {
	list, err := cc.cs.CoreV1().Pods(cc.ns).List(ctx, metav1.ListOptions{LabelSelector: workload.LabelApp + "=" + workload.AppProbe})
	if err != nil {
		return err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for _, p := range list.Items {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil && p.Spec.NodeName != "" {
			cc.pods[p.Name] = results.CapturePod{Name: p.Name, Node: p.Spec.NodeName, IP: ip}
		}
	}
	return nil
}

// Finish stops the cell's capture (also after an interrupt) and writes what
// it kept of the probe pods; a cell whose probes never got an address has
// nothing to write. progress hears of packets the kernel dropped.
func (cc *CellCapture) Finish(ctx context.Context, progress io.Writer) error {
	if cc == nil {
		return nil
	}
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	cc.cancel()
	<-cc.watched
	stopErr := cc.Stop(cleanup)
	if err := cc.notePods(cleanup); err != nil && len(cc.pods) == 0 {
		return errors.Join(stopErr, fmt.Errorf("capture: probe pods: %w", err))
	}
	pods := make([]results.CapturePod, 0, len(cc.pods))
	for _, p := range cc.pods {
		pods = append(pods, p)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	if len(pods) == 0 {
		return stopErr
	}
	cellID, run := cc.cell, cc.run
	sum, err := cc.Write(pods, run.CapturesDir(cellID), run.CaptureSummaryPath(cellID))
	if err != nil {
		return errors.Join(stopErr, fmt.Errorf("capture: %w", err))
	}
	if sum.KernelDropped > 0 && progress != nil {
		fmt.Fprintf(progress, "cell %s: capture: the kernel dropped %d packets before tcpdump saw them; %s undercounts\n",
			cellID, sum.KernelDropped, run.CaptureSummaryPath(cellID))
	}
	return stopErr
}
