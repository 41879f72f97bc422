"""Running a planned point in isolation: the engine child process, the warm worker that keeps one between points,
multi-process points, live progress, and the typed protocol both sides of the child's boundary speak."""
