// The idle sign-out warning (WCAG 2.2.1 Timing Adjustable): the console signs staff out after a period
// without requests (`netmon console --idle-minutes`). Two minutes before that (half the period when it is
// shorter) a dialog says so and offers to stay signed in: a POST with the page's CSRF token to /keepalive,
// which counts as activity. When the time runs out the page reloads, and the server shows the sign-in
// page with "Your session timed out". Same-origin, no inline code: it runs under the console's CSP.
(function () {
  "use strict";
  var me = document.getElementById("idle-script");
  if (!me) { return; }
  var idle = Number(me.dataset.idle) * 1000;
  var warn = Number(me.dataset.warn) * 1000;
  if (!(idle > 0) || !(warn > 0)) { return; }
  var warnTimer = null;
  var endTimer = null;
  var dialog = null;
  var returnFocus = null;

  function clock(ms) {
    var d = new Date(Date.now() + ms);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function build() {
    dialog = document.createElement("dialog");
    dialog.id = "idle-warning";
    dialog.setAttribute("role", "alertdialog");
    dialog.setAttribute("aria-labelledby", "idle-title");
    dialog.setAttribute("aria-describedby", "idle-text");
    var title = document.createElement("h2");
    title.id = "idle-title";
    title.textContent = "You will be signed out soon";
    var text = document.createElement("p");
    text.id = "idle-text";
    var stay = document.createElement("button");
    stay.type = "button";
    stay.id = "idle-stay";
    stay.textContent = "Stay signed in";
    stay.addEventListener("click", keepAlive);
    dialog.addEventListener("cancel", function (event) { event.preventDefault(); keepAlive(); });
    dialog.append(title, text, stay);
    document.body.append(dialog);
  }

  function show() {
    if (!dialog) { build(); }
    var minutes = Math.max(1, Math.round(warn / 60000));
    document.getElementById("idle-text").textContent =
      "You have not used the console for a while. To protect pupils' information you will be signed out " +
      "in about " + minutes + " minute" + (minutes === 1 ? "" : "s") + " (at " + clock(warn) + ")" +
      " unless you choose to stay signed in.";
    returnFocus = document.activeElement;
    if (!dialog.open) { dialog.showModal(); }
    document.getElementById("idle-stay").focus();
  }

  function hide() {
    if (dialog && dialog.open) { dialog.close(); }
    if (returnFocus && document.contains(returnFocus)) { returnFocus.focus(); }
    returnFocus = null;
  }

  function expire() {
    window.location.reload();  // the server ends the session and shows the sign-in page with a notice
  }

  function schedule() {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    warnTimer = setTimeout(show, Math.max(0, idle - warn));
    endTimer = setTimeout(expire, idle + 1000);
  }

  function keepAlive() {
    var body = new FormData();
    body.append("csrf", me.dataset.csrf);
    fetch(me.dataset.keepalive, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok || response.redirected) { expire(); return; }
        hide();
        schedule();
      })
      .catch(function () {
        document.getElementById("idle-text").textContent =
          "The console could not be reached to keep you signed in. Check the connection and try again.";
      });
  }

  schedule();
})();
