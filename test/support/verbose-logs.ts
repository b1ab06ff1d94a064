/**
 * Imported first by a test that checks what the gateway logs: the logger takes its level when first loaded, so the
 * level (jest.config.js sets ERROR) must be the most verbose before any module loads it.
 */
process.env.NI_LOG_LEVEL = 'DEBUG';
