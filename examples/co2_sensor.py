"""The README's sensor input: CO2 readings (`ppm`) as measurement `co2_reading`. A stack deploys it with
config `sensorClasses: [examples.co2_sensor:Co2Sensor]` (the local stack does)."""

from components.telegraf import SensorInput


class Co2Sensor(SensorInput):
    sensor = "co2"
    measurement = "co2_reading"
    field = "ppm"
    title = "CO2 (ppm)"
    unit = "ppm"
