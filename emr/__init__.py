"""Running the benchmark grid on AWS EMR: CPU and GPU clusters, the grid as steps, results back."""
