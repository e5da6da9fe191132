// analyzer/layering_check.cc: the empty program the layering_check_* targets
// link every object of one analyzer layer into (see meson.build). It only
// has to link; it is never run.
int main() { return 0; }
