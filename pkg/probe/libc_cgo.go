//go:build cgo

package probe

/*
// EAI_NODATA is a GNU extension in glibc's netdb.h.
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

// labrun_libc names the C library this file was compiled against: glibc
// defines __GLIBC__ in every header, musl deliberately defines nothing, so the
// compiler (gcc or musl-gcc), not a flag, decides what the binary reports.
static const char *labrun_libc(void) {
#if defined(__GLIBC__)
	return "glibc";
#else
	return "musl";
#endif
}

// labrun_gai is what an application does: getaddrinfo with AF_UNSPEC and no
// AI_ADDRCONFIG (so AAAA is asked even without a global IPv6 address), one
// socket type so each address is counted once.
// labrun_res_init rereads resolv.conf into this thread's resolver state,
// dropping what earlier lookups taught it (glibc's fallback to single-request
// after a timeout). A no-op in musl, which keeps no such state.
static void labrun_res_init(void) { res_init(); }

static int labrun_gai(const char *name, int *count, int *err) {
	struct addrinfo hints, *res = NULL, *p;
	int rc, n = 0;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	errno = 0;
	rc = getaddrinfo(name, NULL, &hints, &res);
	*err = errno;
	for (p = res; p != NULL; p = p->ai_next) n++;
	if (res != NULL) freeaddrinfo(res);
	*count = n;
	return rc;
}
*/
import "C"

import (
	"context"
	"fmt"
	"syscall"
	"time"
	"unsafe"
)

// Libc is the C library the probe was linked against: "glibc" or "musl"
// ("" in a build without cgo).
func Libc() string { return C.GoString(C.labrun_libc()) }

var libcCodes = gaiCodes{NoName: int(C.EAI_NONAME), NoData: int(C.EAI_NODATA), Again: int(C.EAI_AGAIN)}

// libcResolver calls the libc's getaddrinfo, which reads resolv.conf itself
// and applies its options (or, for musl, ignores most of them).
type libcResolver struct{ keepState bool }

func (l libcResolver) Lookup(_ context.Context, name string) Outcome {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var count, errno C.int
	if !l.keepState {
		C.labrun_res_init() // outside the timed call: a new process pays it at start-up
	}
	began := time.Now()
	rc := int(C.labrun_gai(cname, &count, &errno))
	took := time.Since(began)
	text := ""
	if rc != 0 {
		text = fmt.Sprintf("getaddrinfo: %s (%s)", C.GoString(C.gai_strerror(C.int(rc))), gaiName(rc))
		if rc == int(C.EAI_SYSTEM) {
			text += ": " + syscall.Errno(errno).Error()
		}
	}
	return gaiOutcome(rc, libcCodes, text, took, int(count))
}

func (libcResolver) Close() error { return nil }

func gaiName(rc int) string {
	switch rc {
	case int(C.EAI_NONAME):
		return "EAI_NONAME"
	case int(C.EAI_NODATA):
		return "EAI_NODATA"
	case int(C.EAI_AGAIN):
		return "EAI_AGAIN"
	case int(C.EAI_FAIL):
		return "EAI_FAIL"
	case int(C.EAI_MEMORY):
		return "EAI_MEMORY"
	case int(C.EAI_SYSTEM):
		return "EAI_SYSTEM"
	case int(C.EAI_FAMILY):
		return "EAI_FAMILY"
	case int(C.EAI_SERVICE):
		return "EAI_SERVICE"
	}
	return fmt.Sprintf("EAI %d", rc)
}
