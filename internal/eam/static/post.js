// Posts the answer to Entra as soon as the page loads (response_mode
// form_post); the button does the same without script.
document.getElementById("response").submit();
