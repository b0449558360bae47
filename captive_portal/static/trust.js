// Does this device trust the school's certificate? Fetch an https address that only the school's proxy
// answers: the request succeeds only when the proxy's certificate is trusted.
(function () {
  var el = document.getElementById("trust");
  if (!el || !window.fetch) { return; }
  var done = function (ok) {
    el.textContent = ok ? el.getAttribute("data-yes") : el.getAttribute("data-no");
    el.className = "trust " + (ok ? "trusted" : "untrusted");
    el.setAttribute("data-trusted", ok ? "yes" : "no");
  };
  var timer = setTimeout(function () { done(false); }, 8000);
  fetch(el.getAttribute("data-url") + "?t=" + Date.now(), { mode: "no-cors", cache: "no-store", credentials: "omit" })
    .then(function () { clearTimeout(timer); done(true); },
          function () { clearTimeout(timer); done(false); });
})();
