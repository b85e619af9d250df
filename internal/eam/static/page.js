// Polls the sign-in's status and shows it in the ARIA live region; once the
// call is verified (or no call is left) it posts the done form, whose
// answer posts the result to Entra.
(function () {
  "use strict";
  var status = document.getElementById("status");
  if (!status) {
    return;
  }
  var retry = document.getElementById("retry");
  var done = document.getElementById("done");
  var url = status.getAttribute("data-url");
  var finishing = false;
  function show(v) {
    if (status.textContent !== v.text) {
      status.textContent = v.text;
    }
    status.setAttribute("data-stage", v.stage);
    retry.hidden = !v.retry;
    if (v.finish && !finishing) {
      finishing = true;
      done.submit();
    }
    return !v.final;
  }
  function poll() {
    fetch(url, { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 404) { // the sign-in expired
          return { stage: "expired", text: status.getAttribute("data-expired"), final: true };
        }
        return r.json();
      })
      .then(function (v) {
        if (show(v)) {
          setTimeout(poll, 500);
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  if (status.getAttribute("data-stage") === "verified") {
    finishing = true;
    done.submit();
    return;
  }
  poll();
})();
