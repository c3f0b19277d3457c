// Passkeys (issue 17) and step-up (R21): the only pages that need JavaScript, since WebAuthn
// is a browser API. Each ceremony's options come from the JSON API, binary fields as base64url;
// the browser's answer goes back the same way.
(function () {
  "use strict";

  function bytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }
  function text(buffer) {
    if (!buffer) { return null; }
    var view = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < view.length; i++) { raw += String.fromCharCode(view[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (c) { return { type: c.type || "public-key", id: bytes(c.id), transports: c.transports }; });
  }
  function creationOptions(options) {
    var o = options.publicKey;
    o.challenge = bytes(o.challenge);
    o.user.id = bytes(o.user.id);
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return { publicKey: o };
  }
  function requestOptions(options) {
    var o = options.publicKey;
    o.challenge = bytes(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return { publicKey: o };
  }
  function attestationJSON(c) {
    return {
      id: c.id, rawId: text(c.rawId), type: c.type, extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { attestationObject: text(c.response.attestationObject), clientDataJSON: text(c.response.clientDataJSON) }
    };
  }
  function assertionJSON(c) {
    return {
      id: c.id, rawId: text(c.rawId), type: c.type, extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: {
        authenticatorData: text(c.response.authenticatorData), clientDataJSON: text(c.response.clientDataJSON),
        signature: text(c.response.signature), userHandle: text(c.response.userHandle)
      }
    };
  }
  function csrf() {
    var field = document.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }
  function post(url, body, method) {
    return fetch(url, {
      method: method || "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.text().then(function (t) {
        var json = t ? JSON.parse(t) : {};
        if (!r.ok) { throw new Error(json.detail || ("HTTP " + r.status)); }
        return json;
      });
    });
  }
  function show(id, message) {
    var box = document.getElementById(id);
    if (box) { box.textContent = message; box.hidden = false; }
  }

  // Sign-in with a passkey: no username typed (discoverable credentials).
  var signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    signIn.addEventListener("click", function (event) {
      event.preventDefault();
      post("/api/v1/auth/passkey").then(function (begun) {
        return navigator.credentials.get(requestOptions(begun.options)).then(function (credential) {
          return post("/api/v1/auth/passkey/finish", { ceremony: begun.ceremony, credential: assertionJSON(credential) });
        });
      }).then(function () {
        window.location.assign(signIn.getAttribute("data-next") || "/");
      }).catch(function (e) { show("passkey-error", "The passkey sign-in failed: " + e.message); });
    });
  }

  // Registering a passkey for my own account.
  var add = document.getElementById("add-passkey");
  if (add) {
    add.addEventListener("click", function (event) {
      event.preventDefault();
      var name = document.getElementById("passkey-name").value;
      var password = document.getElementById("passkey-password").value;
      var body = { name: name };
      if (password) { body.currentPassword = password; }
      post("/api/v1/me/passkeys/register", body).then(function (begun) {
        return navigator.credentials.create(creationOptions(begun.options)).then(function (credential) {
          return post("/api/v1/me/passkeys", { ceremony: begun.ceremony, credential: attestationJSON(credential) });
        });
      }).then(function () {
        window.location.assign("/account?passkey=added#passkeys");
      }).catch(function (e) { show("passkey-error", "The passkey was not added: " + e.message); });
    });
  }

  // Step-up (R21): on a request whose policy asks for a passkey, the approve or reject button
  // first asks the browser for an assertion over the change's digest, then sends the form
  // with it (and with the button's decision, which form.submit() would drop).
  var decide = document.querySelector("form[data-step-up]");
  // The link a bearer caller (the CLI) was given ends in ?decide=approve|reject: bring that
  // button into view and focus; the approver still reviews and presses it.
  var asked = new URLSearchParams(window.location.search).get("decide");
  var button = decide && (asked === "approve" || asked === "reject") && document.getElementById(asked);
  if (button) { button.scrollIntoView({ block: "center" }); button.focus(); }
  if (decide) {
    decide.addEventListener("submit", function (event) {
      if (decide.querySelector("input[name=step_up_assertion]").value) { return; }
      event.preventDefault();
      var decision = event.submitter && event.submitter.value === "reject" ? "reject" : "approve";
      var request = decide.getAttribute("data-request");
      post("/api/v1/requests/" + encodeURIComponent(request) + "/stepUp", { decision: decision }).then(function (begun) {
        return navigator.credentials.get(requestOptions(begun.options)).then(function (credential) {
          var c = assertionJSON(credential);
          decide.querySelector("input[name=step_up_nonce]").value = begun.nonce;
          decide.querySelector("input[name=step_up_assertion]").value = JSON.stringify({
            credentialId: c.rawId, authenticatorData: c.response.authenticatorData,
            clientDataJSON: c.response.clientDataJSON, signature: c.response.signature
          });
          var chosen = document.createElement("input");
          chosen.type = "hidden"; chosen.name = "decision"; chosen.value = decision;
          decide.appendChild(chosen);
          decide.submit();
        });
      }).catch(function (e) { show("step-up-error", "Your passkey did not confirm the decision: " + e.message); });
    });
  }
})();
