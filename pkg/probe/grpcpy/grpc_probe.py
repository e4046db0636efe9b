"""labrun's gRPC C-core probe worker and lab server (Debian python3-grpcio).

worker PORT DEADLINE_S: reads one name per line on stdin; for each, opens a new
channel to dns:///NAME:PORT (a new channel, so every lookup resolves afresh),
makes one unary call with the deadline and prints one JSON line:
{"result": ok|nxdomain|timeout|error, "error": "...", "took_us": N}.
The resolver is C-core's, chosen by GRPC_DNS_RESOLVER (ares or native), which
the Go probe sets. It prints "ready" once grpc is imported.

serve ADDR: a gRPC server that answers any unary method with an empty
message; it prints "ready" once listening.
"""
import json
import sys
import time
from concurrent import futures

import grpc

METHOD = "/labrun.Probe/Ping"


def classify(err, took_s):
    """Maps an RPC error to a probe result. getaddrinfo's EAI_AGAIN ("Temporary
    failure in name resolution", the native resolver) is a timeout only when it
    took at least a second, as in the Go probe's libc back ends: sooner, the
    server answered SERVFAIL or REFUSED."""
    code = err.code()
    details = err.details() or ""
    text = "%s: %s" % (code.name, details)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "timeout", text
    if code == grpc.StatusCode.UNAVAILABLE and "DNS resolution failed" in details:
        low = details.lower()
        if "not found" in low or "name or service not known" in low or "no address" in low:
            return "nxdomain", text
        if "timeout" in low or "timed out" in low:
            return "timeout", text
        if "temporary failure" in low and took_s >= 1.0:
            return "timeout", text
    return "error", text


def warm_up(port):
    """Initialises gRPC core (threads, pollers) on a target that needs no DNS,
    so the first timed lookup does not carry ~10 ms of start-up."""
    channel = grpc.insecure_channel("ipv4:127.0.0.1:%d" % port)
    try:
        grpc.channel_ready_future(channel).result(timeout=0.2)
    except grpc.FutureTimeoutError:
        pass  # no server on loopback: core is initialised all the same
    finally:
        channel.close()


def worker(port, deadline):
    warm_up(port)
    print("ready", flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        start = time.perf_counter_ns()
        result, text = "ok", ""
        channel = grpc.insecure_channel("dns:///%s:%d" % (name, port))
        try:
            ping = channel.unary_unary(METHOD)
            ping(b"", timeout=deadline)
        except grpc.RpcError as err:
            result, text = classify(err, (time.perf_counter_ns() - start) / 1e9)
        finally:
            channel.close()
        took = (time.perf_counter_ns() - start) // 1000
        print(json.dumps({"result": result, "error": text, "took_us": took}), flush=True)


class Pong(grpc.GenericRpcHandler):
    def service(self, handler_call_details):
        return grpc.unary_unary_rpc_method_handler(lambda request, context: b"")


def serve(addr):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((Pong(),))
    if server.add_insecure_port(addr) == 0:
        sys.exit("cannot listen on %s" % addr)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        worker(int(sys.argv[2]), float(sys.argv[3]))
    elif len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        sys.exit("usage: grpc_probe.py worker PORT DEADLINE_S | serve ADDR")


if __name__ == "__main__":
    main()
