// Does this device trust the school's certificate? Fetch an https address that only the school's proxy
// answers: the request succeeds only when the proxy's certificate is trusted.
(function () {
  var el = document.getElementById("trust");
  if (!el || !window.fetch) { return; }
  var done = function (ok) {
    el.textContent = ok ? el.getAttribute("data-yes") : el.getAttribute("data-no");
    el.className = "trust " + (ok ? "trusted" : "untrusted");
    el.setAttribute("data-trusted", ok ? "yes" : "no");
    // on the welcome page the certificate step is for devices that still need it
    var step = document.getElementById("certificate-step");
    if (step && ok) { step.hidden = true; }
  };
  var timer = setTimeout(function () { done(false); }, 8000);
  // CORS mode and a header only netmon's proxy sends: a real site of that name can never say "trusted".
  fetch(el.getAttribute("data-url") + "?t=" + Date.now(), { mode: "cors", cache: "no-store", credentials: "omit" })
    .then(function (r) { clearTimeout(timer); done(r.headers.get("X-Netmon-Trust") === "yes"); },
          function () { clearTimeout(timer); done(false); });
})();
