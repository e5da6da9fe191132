/* tests/cli/record/preload_stub.c: an empty shared library, set as a
   pre-existing LD_PRELOAD to check that heapsight record keeps it. */
int heapsight_record_preload_stub(void);
int heapsight_record_preload_stub(void) { return 0; }
