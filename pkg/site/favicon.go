package site

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// FaviconFile is the site's icon, at its root: without one every browser
// asks for /favicon.ico and logs the 404.
const FaviconFile = "favicon.ico"

// favicon draws a 16×16 icon: a 5 s bar in the report's fail red above two
// short green ones (browsers read a PNG served as .ico).
func favicon() []byte {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	red := color.NRGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff}
	green := color.NRGBA{R: 0x2e, G: 0x7d, B: 0x32, A: 0xff}
	bar := func(y, length int, c color.Color) {
		for dy := range 3 {
			for x := 1; x < 1+length; x++ {
				img.Set(x, y+dy, c)
			}
		}
	}
	bar(2, 14, red)
	bar(7, 4, green)
	bar(12, 5, green)
	var b bytes.Buffer
	png.Encode(&b, img) // cannot fail on an in-memory image
	return b.Bytes()
}
