// Written at deploy time from the stack outputs; empty = same origin (local server).
window.CHATBOT_CONFIG = { apiBaseUrl: "", streamUrl: "" };
