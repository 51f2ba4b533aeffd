// Copy buttons: the only script. Without it the token field is read-only
// text that can be selected and copied by hand.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button.copy");
  if (!b) return;
  var input = document.getElementById(b.dataset.copy);
  input.select();
  var done = function () { b.textContent = "Copied"; };
  if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
  else { document.execCommand("copy"); done(); }
});
