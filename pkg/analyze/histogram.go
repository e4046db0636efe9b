package analyze

import (
	"math"
	"math/bits"
)

// Histogram counts non-negative values (µs) in log-linear buckets, the way
// HdrHistogram does: values below 256 exactly, above that 128 buckets per
// power of two, so any quantile is within 0.8 % of the true value. Count,
// min, max and sum are exact. Memory is fixed (about 58 KB) whatever the
// number of values.
type Histogram struct {
	counts        [numBuckets]uint64
	n             uint64
	min, max, sum int64
}

const (
	subBits    = 7
	subCount   = 1 << subBits // buckets per power of two above the exact range
	exactLimit = 2 * subCount // values below this have a bucket each
	numBuckets = exactLimit + (63-subBits-1)*subCount
)

func bucketOf(v int64) int {
	u := uint64(v)
	l := bits.Len64(u)
	if l <= subBits+1 {
		return int(u)
	}
	shift := l - subBits - 1
	return exactLimit + (shift-1)*subCount + int(u>>shift) - subCount
}

// bucketBounds returns the smallest value of bucket i and its width.
func bucketBounds(i int) (low, width int64) {
	if i < exactLimit {
		return int64(i), 1
	}
	shift := (i-exactLimit)/subCount + 1
	m := int64((i-exactLimit)%subCount + subCount)
	return m << shift, 1 << shift
}

// Add records one value; negative values count as 0.
func (h *Histogram) Add(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

func (h *Histogram) Count() uint64 { return h.n }
func (h *Histogram) Max() int64    { return h.max }
func (h *Histogram) Min() int64    { return h.min }

// Mean is the exact mean (0 when empty).
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.n)
}

// Quantile returns the value at quantile q (0 < q ≤ 1): the middle of the
// bucket that holds the ceil(q·n)-th smallest value, clamped to [min, max].
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketBounds(i)
			return min(max(low+(width-1)/2, h.min), h.max)
		}
	}
	return h.max
}

// CountAtLeast is how many values are ≥ v, give or take the values that share
// v's bucket (0.8 % wide). Stats counts its thresholds exactly instead.
func (h *Histogram) CountAtLeast(v int64) uint64 {
	var n uint64
	for i := bucketOf(max(v, 0)); i < numBuckets; i++ {
		n += h.counts[i]
	}
	return n
}

// Bucket is one non-empty bucket: values in [Low, Low+Width).
type Bucket struct {
	Low   int64  `json:"low_us"`
	Width int64  `json:"width_us"`
	Count uint64 `json:"count"`
}

// Buckets returns the non-empty buckets in order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i, c := range h.counts {
		if c > 0 {
			low, width := bucketBounds(i)
			out = append(out, Bucket{Low: low, Width: width, Count: c})
		}
	}
	return out
}
