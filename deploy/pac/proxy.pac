// netmon: proxy auto-configuration for the explicit-proxy alternative (devices configured by MDM, PAC
// or WPAD instead of the transparent gateway). Served by the captive portal as /proxy.pac and /wpad.dat
// (Content-Type: application/x-ns-proxy-autoconfig). Replace 10.10.0.1 with the gateway's pupil address
// and keep the port equal to the regular@3128 mode in /etc/netmon/mitm_config.yaml.
function FindProxyForURL(url, host) {
    // The portal itself, and names on the school's own network, are reached directly.
    if (isPlainHostName(host) ||
        dnsDomainIs(host, ".pupils.school.lan") ||
        host == "10.10.0.1") {
        return "DIRECT";
    }
    // Everything else through netmon. No "DIRECT" fallback: a stopped proxy must not become a silent
    // bypass of the school's monitoring.
    return "PROXY 10.10.0.1:3128";
}
