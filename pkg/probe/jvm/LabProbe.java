// LabProbe is the Java side of labrun's jvm probe back end: one worker per
// concurrent lookup, driven by the Go probe over stdin/stdout like the gRPC
// workers. It reads one name per line and answers one JSON line per name:
// {"answers":N,"exception":"class","error":"message","took_us":T}.
// Argument 1: "defaults" (the JVM's own address cache) or "nocache"
// (networkaddress.cache.ttl=0, networkaddress.cache.negative.ttl=0).
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.security.Security;

public class LabProbe {
    public static void main(String[] args) throws Exception {
        String variant = args.length > 0 ? args[0] : "defaults";
        if (variant.equals("nocache")) {
            Security.setProperty("networkaddress.cache.ttl", "0");
            Security.setProperty("networkaddress.cache.negative.ttl", "0");
        } else if (!variant.equals("defaults")) {
            System.err.println("LabProbe: unknown variant " + variant);
            System.exit(2);
        }
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("ready");
        System.out.flush();
        String name;
        while ((name = in.readLine()) != null) {
            long t0 = System.nanoTime();
            int answers = 0;
            String exc = "", msg = "";
            try {
                answers = InetAddress.getAllByName(name).length;
            } catch (Exception e) {
                exc = e.getClass().getName();
                msg = String.valueOf(e.getMessage());
            }
            long tookUS = (System.nanoTime() - t0) / 1000;
            System.out.println("{\"answers\":" + answers + ",\"exception\":\"" + esc(exc) + "\",\"error\":\"" + esc(msg)
                    + "\",\"took_us\":" + tookUS + "}");
            System.out.flush();
        }
    }

    static String esc(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.toString();
    }
}
