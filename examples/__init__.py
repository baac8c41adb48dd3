"""Examples of the platform's extension points, deployable as they are (config `sensorClasses`)."""
