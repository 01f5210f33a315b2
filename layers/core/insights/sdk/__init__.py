"""The browser SDK (insights.js, insights.mjs) and the tracking function's routes for it."""
