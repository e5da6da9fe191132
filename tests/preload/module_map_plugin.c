/* tests/preload/module_map_plugin.c: a module for module_map_test to
 * dlopen and dlclose. */
__attribute__((visibility("default"))) int module_map_plugin_answer(void) { return 42; }
